"""Method registry: ``config.method.name`` → Method class.

Adding a method is one module defining a :class:`Method` subclass and one
entry in ``_CLASSES``.
"""

from ssl_pairs.errors import unknown_name_error
from ssl_pairs.methods.base import Method, RunInfo
from ssl_pairs.methods.byol import BYOL
from ssl_pairs.methods.dino import DINO
from ssl_pairs.methods.mocov2 import MoCoV2
from ssl_pairs.methods.pirl import PIRL
from ssl_pairs.methods.simclr import SimCLR
from ssl_pairs.methods.supervised import Supervised
from ssl_pairs.methods.vicreg import BarlowTwins, VICReg

_CLASSES = (SimCLR, MoCoV2, BYOL, DINO, VICReg, BarlowTwins, PIRL, Supervised)
METHODS = {cls.name: cls for cls in _CLASSES}


def get_method(config, run: RunInfo = RunInfo()) -> Method:
  """Instantiates the method named by ``config.method.name``."""
  name = config.method.name
  if name not in METHODS:
    raise unknown_name_error('method (method.name)', name, METHODS)
  return METHODS[name](config, run)
