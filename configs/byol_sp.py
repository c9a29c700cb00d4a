"""python main.py --config=configs/byol_sp.py

configs/byol.py with pairs=sp (semantic pairs): its docstring
has the settings, the other switches and the expected results.
"""

from configs import byol


def get_config(arg=None):
  return byol.get_config('pairs=sp,' + (arg or ''))
