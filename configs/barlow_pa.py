"""python main.py --config=configs/barlow_pa.py

configs/barlow.py with pairs=pa (augmented pairs): its docstring
has the settings, the other switches and the expected results.
"""

from configs import barlow


def get_config(arg=None):
  return barlow.get_config('pairs=pa,' + (arg or ''))
