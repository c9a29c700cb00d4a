"""python main.py --config=configs/barlow_sp.py

configs/barlow.py with pairs=sp (semantic pairs): its docstring
has the settings, the other switches and the expected results.
"""

from configs import barlow


def get_config(arg=None):
  return barlow.get_config('pairs=sp,' + (arg or ''))
