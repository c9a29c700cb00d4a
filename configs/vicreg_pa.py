"""python main.py --config=configs/vicreg_pa.py

configs/vicreg.py with pairs=pa (augmented pairs): its docstring
has the settings, the other switches and the expected results.
"""

from configs import vicreg


def get_config(arg=None):
  return vicreg.get_config('pairs=pa,' + (arg or ''))
