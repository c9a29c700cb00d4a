"""Prior embeddings of un-augmented images, for mining positive pairs (GPS-SSL).

``data.gps.prior`` names where an embedding of every pretraining image comes
from; Euclidean (or cosine) closeness in it stands for semantic similarity:

* ``pixels`` — the raw image at ``data.gps.pixel_size`` px, flattened, scaled
  to [0, 1], optionally reduced to ``data.gps.pca_dim`` dimensions by PCA;
* ``random_init`` — pooled features of a randomly initialised backbone of the
  run's architecture (seeded by ``data.pair_seed``);
* ``checkpoint:<workdir>`` — pooled features of the encoder of an ssl_pairs
  checkpoint (e.g. a strong-augmentation SimCLR run);
* ``npy:<path>`` — a user-given float array [N, D], row i for image i;
* ``autoencoder`` — the bottleneck of a small convolutional autoencoder
  trained here on the pretraining images (32 px, ``ae_epochs`` epochs of
  Adam on the mean squared reconstruction error, latent ``ae_dim``), seeded by
  ``data.pair_seed``.

Embeddings are cached as ``<cache_dir>/prior_<key>.npy`` (the run's workdir),
so a resumed run does not recompute them.
"""

import hashlib
import json
import os
from typing import Optional

import flax.linen as nn
import ml_collections
import jax
import jax.numpy as jnp
import numpy as np

from ssl_pairs.errors import UserError
from ssl_pairs.evals import features as features_lib

PRIORS = ('pixels', 'random_init', 'autoencoder', 'checkpoint:<workdir>',
          'npy:<path>')
AE_SIZE = 32


def all_images(source, size: Optional[int] = None) -> np.ndarray:
  """uint8 [N, S, S, 3] of every image (resized to ``size`` if given)."""
  if source.images is not None and size in (None, source.image_size):
    return source.images
  from PIL import Image  # pylint: disable=g-import-not-at-top
  out = []
  for i in range(len(source)):
    image = source[i]
    if size and size != image.shape[0]:
      image = np.asarray(Image.fromarray(image).resize((size, size),
                                                        Image.BILINEAR))
    out.append(image)
  return np.stack(out)


def pca(x: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
  """Projection of centred x [N, D] on its top ``dim`` principal axes."""
  x = x - x.mean(0)
  if dim >= x.shape[1]:
    return x
  rng = np.random.default_rng(seed)
  sample = x[rng.choice(len(x), min(len(x), 20000), replace=False)]
  _, _, vt = np.linalg.svd(sample, full_matrices=False)
  return x @ vt[:dim].T


class ConvAutoencoder(nn.Module):
  """32 px → three stride-2 convolutions (16/32/64 channels) → ``latent`` →
  the mirrored decoder (transposed convolutions, sigmoid output)."""
  latent: int = 128

  def setup(self):
    self.enc = [nn.Conv(c, (3, 3), strides=2) for c in (16, 32, 64)]
    self.to_latent = nn.Dense(self.latent)
    self.from_latent = nn.Dense(4 * 4 * 64)
    self.dec = [nn.ConvTranspose(c, (3, 3), strides=(2, 2))
                for c in (32, 16, 3)]

  def encode(self, x):
    for conv in self.enc:
      x = nn.relu(conv(x))
    return self.to_latent(x.reshape(x.shape[0], -1))

  def __call__(self, x):
    y = self.from_latent(self.encode(x)).reshape(x.shape[0], 4, 4, 64)
    for i, conv in enumerate(self.dec):
      y = conv(y)
      y = nn.relu(y) if i < len(self.dec) - 1 else nn.sigmoid(y)
    return y


def train_autoencoder(images: np.ndarray, epochs: int, latent: int,
                      seed: int, batch_size: int = 256, lr: float = 1e-3,
                      progress: bool = True):
  """Trains the autoencoder on uint8 images [N, 32, 32, 3].

  Returns (embeddings float32 [N, latent], per-epoch mean training loss).
  """
  import optax  # pylint: disable=g-import-not-at-top
  model = ConvAutoencoder(latent)
  x_all = images.astype(np.float32) / 255.0
  params = model.init(jax.random.key(seed), x_all[:2])
  tx = optax.adam(lr)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x):
    def loss_fn(p):
      return jnp.mean((model.apply(p, x) - x) ** 2)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  rng = np.random.default_rng(seed)
  batch_size = min(batch_size, len(x_all))
  steps = len(x_all) // batch_size
  losses = []
  bar = range(epochs)
  if progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    bar = tqdm(bar, desc='autoencoder prior', unit='epoch')
  for _ in bar:
    order = rng.permutation(len(x_all))
    total = 0.0
    for i in range(steps):
      params, opt_state, loss = step(
          params, opt_state, x_all[order[i * batch_size:(i + 1) * batch_size]])
      total += float(loss)
    losses.append(total / steps)
    if progress:
      bar.set_postfix(mse=f'{losses[-1]:.4f}')
  encode = jax.jit(lambda p, x: model.apply(p, x, method=ConvAutoencoder.encode))
  z = np.concatenate([np.asarray(encode(params, x_all[i:i + 1024]))
                      for i in range(0, len(x_all), 1024)])
  return z.astype(np.float32), losses


def compute_prior(spec: str, source, gps_config, model_config,
                  seed: int) -> np.ndarray:
  """float32 [N, D] prior embedding of every image of ``source``."""
  if spec == 'pixels':
    images = all_images(source, gps_config.pixel_size or None)
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    if gps_config.pca_dim:
      x = pca(x, gps_config.pca_dim, seed)
    return x.astype(np.float32)
  if spec.startswith('npy:'):
    path = os.path.expanduser(spec[4:])
    if not os.path.exists(path):
      raise UserError(f'Prior embedding file {path} does not exist; give an '
                      '.npy array with one row per pretraining image.')
    x = np.load(path)
    if x.ndim != 2 or len(x) != len(source):
      raise UserError(f'Prior embedding {path} has shape {x.shape} but the '
                      f'pretraining data has {len(source)} images; it needs '
                      'one row per image, in the source\'s order.')
    return x.astype(np.float32)
  if spec == 'autoencoder':
    z, _ = train_autoencoder(all_images(source, AE_SIZE),
                             gps_config.ae_epochs, gps_config.ae_dim, seed)
    return z
  if spec == 'random_init':
    from ssl_pairs.models import get_backbone  # pylint: disable=g-import-not-at-top
    backbone, _ = get_backbone(model_config)
    images = all_images(source)
    variables = backbone.init(jax.random.key(seed), images[:2].astype(
        np.float32), train=False)
    variables = {'params': variables['params'],
                 'batch_stats': variables.get('batch_stats', {})}
    return features_lib.encoder_features_fn(backbone)(variables, images)
  if spec.startswith('checkpoint:'):
    from ssl_pairs.checkpoint import restore_encoder  # pylint: disable=g-import-not-at-top
    from ssl_pairs.models import get_backbone  # pylint: disable=g-import-not-at-top
    saved, _, variables, _ = restore_encoder(spec[len('checkpoint:'):])
    backbone, _ = get_backbone(ml_collections.ConfigDict(saved['model']))
    images = all_images(source, saved['data']['image_size'])
    return features_lib.encoder_features_fn(backbone)(variables, images)
  raise UserError(f'Unknown data.gps.prior {spec!r}; choose one of: '
                  f'{", ".join(PRIORS)}.')


def cached_prior(spec: str, source, gps_config, model_config, seed: int,
                 cache_dir: Optional[str]) -> np.ndarray:
  """``compute_prior``, read from / written to ``cache_dir`` when given."""
  if not cache_dir or spec.startswith('npy:'):  # A file is its own cache.
    return compute_prior(spec, source, gps_config, model_config, seed)
  facts = [spec, len(source), source.image_size, gps_config.pixel_size,
           gps_config.pca_dim, seed]
  if spec == 'random_init':
    facts += [model_config.arch, model_config.width_multiplier]
  if spec == 'autoencoder':
    facts += [gps_config.ae_epochs, gps_config.ae_dim]
  if spec.startswith('checkpoint:'):  # A newer checkpoint is a new prior.
    from ssl_pairs.checkpoint import find_checkpoint_dir  # pylint: disable=g-import-not-at-top
    facts.append(sorted(os.listdir(find_checkpoint_dir(spec[11:]))))
  key = hashlib.sha1(json.dumps(facts).encode()).hexdigest()[:12]
  path = os.path.join(cache_dir, f'prior_{key}.npy')
  if os.path.exists(path):
    return np.load(path)
  x = compute_prior(spec, source, gps_config, model_config, seed)
  os.makedirs(cache_dir, exist_ok=True)
  np.save(path + '.tmp.npy', x)
  os.replace(path + '.tmp.npy', path)
  return x
