"""python main.py --config=configs/vicreg_sp.py

configs/vicreg.py with pairs=sp (semantic pairs): its docstring
has the settings, the other switches and the expected results.
"""

from configs import vicreg


def get_config(arg=None):
  return vicreg.get_config('pairs=sp,' + (arg or ''))
