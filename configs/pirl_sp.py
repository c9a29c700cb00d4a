"""python main.py --config=configs/pirl_sp.py

configs/pirl.py with pairs=sp (semantic pairs): its docstring
has the settings, the other switches and the expected results.
"""

from configs import pirl


def get_config(arg=None):
  return pirl.get_config('pairs=sp,' + (arg or ''))
