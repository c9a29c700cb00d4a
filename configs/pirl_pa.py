"""python main.py --config=configs/pirl_pa.py

configs/pirl.py with pairs=pa (augmented pairs): its docstring
has the settings, the other switches and the expected results.
"""

from configs import pirl


def get_config(arg=None):
  return pirl.get_config('pairs=pa,' + (arg or ''))
