"""python main.py --config=configs/mocov2_pa.py

configs/mocov2.py with pairs=pa (augmented pairs): its docstring
has the settings, the other switches and the expected results.
"""

from configs import mocov2


def get_config(arg=None):
  return mocov2.get_config('pairs=pa,' + (arg or ''))
