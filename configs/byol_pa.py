"""python main.py --config=configs/byol_pa.py

configs/byol.py with pairs=pa (augmented pairs): its docstring
has the settings, the other switches and the expected results.
"""

from configs import byol


def get_config(arg=None):
  return byol.get_config('pairs=pa,' + (arg or ''))
