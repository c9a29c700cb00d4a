"""python main.py --config=configs/mocov2_sp.py

configs/mocov2.py with pairs=sp (semantic pairs): its docstring
has the settings, the other switches and the expected results.
"""

from configs import mocov2


def get_config(arg=None):
  return mocov2.get_config('pairs=sp,' + (arg or ''))
