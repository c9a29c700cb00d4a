r"""python main.py --config=configs/mocov2_temporal.py

MoCo v2 on temporal pairs: frames i and i+gap of one shot of a video
(shots found by frame differences); data.temporal.tracker=True pairs a
region with the same region tracked into the later frame.

  python main.py --config=configs/mocov2_temporal.py:runlocal     # CPU minutes
  python main.py --config=configs/mocov2_temporal.py:smoke        # seconds (tests)
  ... --config.data.dataset=video_carphone_pristine.npz  # another video

Defaults: the method's settings in configs/<method>.py, and configs/common.py MINED_DATA (video_bikes.npz, ResNet-18, 64 px).
"""

from configs import common


def get_config(arg=None):
  return common.mined_config('mocov2', 'temporal', 'mocov2_temporal', arg)
