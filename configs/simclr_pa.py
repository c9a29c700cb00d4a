"""python main.py --config=configs/simclr_pa.py

configs/simclr.py with pairs=pa (augmented pairs): its docstring
has the settings, the other switches and the expected results.
"""

from configs import simclr


def get_config(arg=None):
  return simclr.get_config('pairs=pa,' + (arg or ''))
