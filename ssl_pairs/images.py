"""Image normalisation on the device, shared by the train step and evaluation.

Batches travel as uint8 (4× less to copy than float32) and are normalised
inside the jitted programs. One fixed normalisation (ImageNet statistics) for
every dataset, so features of a pretraining set and of a transfer set pass
through the same input scaling.
"""

import jax.numpy as jnp
import numpy as np

MEAN = np.asarray([0.485, 0.456, 0.406], np.float32)
STD = np.asarray([0.229, 0.224, 0.225], np.float32)


def normalize_images(images, dtype=jnp.float32):
  """uint8 [..., 3] → normalised float on the device."""
  x = images.astype(jnp.float32) / 255.0
  return ((x - MEAN) / STD).astype(dtype)
