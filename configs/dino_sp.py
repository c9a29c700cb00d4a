"""python main.py --config=configs/dino_sp.py

configs/dino.py with pairs=sp (semantic pairs): its docstring
has the settings, the other switches and the expected results.
"""

from configs import dino


def get_config(arg=None):
  return dino.get_config('pairs=sp,' + (arg or ''))
