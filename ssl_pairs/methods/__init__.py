"""Method registry: ``config.method.name`` → Method class."""

from ssl_pairs.errors import unknown_name_error
from ssl_pairs.methods.base import Method
from ssl_pairs.methods.simclr import SimCLR

METHODS = {cls.name: cls for cls in (SimCLR,)}


def get_method(config) -> Method:
  """Instantiates the method named by ``config.method.name``."""
  name = config.method.name
  if name not in METHODS:
    raise unknown_name_error('method (method.name)', name, METHODS)
  return METHODS[name](config)
