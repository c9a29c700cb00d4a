"""DINO (Caron et al. 2021): self-distillation with a centred, sharpened teacher.

The anchor's and the partner's views are the two global views; with
``data.augment.local_crops`` = N the student also sees N small local crops
taken alternately from the anchor and the partner (multi-crop), and the loss
pairs every teacher (global) view with every other student view. The teacher
(EMA of the student, momentum from ``ema_base`` to 1, cosine) and the centre
(EMA of the teacher's batch-mean logits) are in ``method_state``. The teacher
temperature rises linearly from ``teacher_temp_start`` to ``teacher_temp``
over ``teacher_temp_warmup_epochs``; the head's last layer is frozen for
``freeze_last_layer_epochs``: its gradient is zeroed and its value kept (the
reference code cancels the gradient; here the optimizer's momentum for it may
still carry weight decay from those steps).
"""

import jax
import jax.numpy as jnp

from ssl_pairs import losses
from ssl_pairs.methods.base import (EncoderWithHead, Method, collapse_metrics,
                                    cosine_ema_momentum, ema)
from ssl_pairs.models import DTYPES
from ssl_pairs.models.heads import DINOHead


class DINO(Method):
  """DINO on two global views."""
  name = 'dino'
  # method.* settings this method reads (configs/dino.py sets each).
  KEYS = {
      'proj_hidden_dim': 'head MLP hidden width',
      'bottleneck_dim': 'head bottleneck width',
      'num_prototypes': 'prototypes K (last layer)',
      'student_temp': 'student temperature',
      'teacher_temp_start': 'teacher temperature at step 0',
      'teacher_temp': 'teacher temperature after the warm-up',
      'teacher_temp_warmup_epochs': 'epochs of the linear teacher-temperature warm-up',
      'center_momentum': 'centre EMA momentum',
      'ema_base': 'teacher momentum at step 0 (cosine up to 1)',
      'freeze_last_layer_epochs': 'epochs the last layer stays frozen',
      'use_bn_in_head': 'BatchNorm in the head MLP',
  }

  def build(self):
    m = self.config.method
    return EncoderWithHead(self.backbone, DINOHead(
        m.proj_hidden_dim, m.bottleneck_dim, m.num_prototypes,
        use_bn=m.get('use_bn_in_head', False),
        dtype=DTYPES[self.config.model.dtype]))

  def init_method_state(self, rng, variables):
    del rng
    return {'target_params': jax.tree.map(jnp.copy, variables['params']),
            'target_batch_stats': jax.tree.map(jnp.copy,
                                               variables['batch_stats']),
            'center': jnp.zeros((self.config.method.num_prototypes,))}

  def teacher_temperature(self, step):
    m = self.config.method
    warmup = m.teacher_temp_warmup_epochs * self.run.steps_per_epoch
    frac = jnp.clip(step / jnp.maximum(warmup, 1.0), 0.0, 1.0)
    return m.teacher_temp_start + frac * (m.teacher_temp - m.teacher_temp_start)

  def _frozen(self, step):
    m = self.config.method
    return step < m.freeze_last_layer_epochs * self.run.steps_per_epoch

  def loss(self, params, batch_stats, method_state, batch, rng, step):
    del rng
    m = self.config.method
    x = jnp.concatenate([batch['view1'], batch['view2']])
    (_, student), batch_stats = self.apply(params, batch_stats, x)
    if 'local' in batch:
      # Multi-crop: the student also sees the N local views ([B, N, s, s, 3],
      # stacked view-major after the two global views); the teacher only the
      # global ones. A separate forward, as the sizes differ.
      local = batch['local']
      b, n = local.shape[:2]
      local = jnp.swapaxes(local, 0, 1).reshape((n * b,) + local.shape[2:])
      (_, student_local), batch_stats = self.apply(params, batch_stats, local)
      student = jnp.concatenate([student, student_local])
    (_, teacher), target_stats = self.apply(
        method_state['target_params'], method_state['target_batch_stats'], x)
    teacher = jax.lax.stop_gradient(teacher)
    loss = losses.dino_loss(student, teacher, method_state['center'],
                            m.student_temp, self.teacher_temperature(step))
    # Entropy of the centred, sharpened teacher distribution: ln K when the
    # targets are uniform (the collapse DINO's centring can fall into).
    targets = jax.nn.softmax((teacher - method_state['center']) /
                             self.teacher_temperature(step), axis=-1)
    entropy = -jnp.sum(targets * jnp.log(jnp.maximum(targets, 1e-30)), -1)
    metrics = dict(collapse_metrics(student[:x.shape[0]]),
                   teacher_temp=self.teacher_temperature(step),
                   teacher_entropy=jnp.mean(entropy))
    return loss, (batch_stats, metrics,
                  {'teacher_logits': teacher, 'target_batch_stats': target_stats})

  def transform_grads(self, grads, step):
    last = grads['head']['last_layer']
    frozen = jnp.where(self._frozen(step), jnp.zeros_like(last), last)
    return {**grads, 'head': {**grads['head'], 'last_layer': frozen}}

  def after_update(self, old_state, new_state, extras):
    m = self.config.method
    s = old_state.method_state
    head = new_state.params['head']
    last = jnp.where(self._frozen(old_state.step),
                     old_state.params['head']['last_layer'], head['last_layer'])
    params = {**new_state.params, 'head': {**head, 'last_layer': last}}
    tau = cosine_ema_momentum(m.ema_base, old_state.step, self.run.total_steps)
    return new_state.replace(params=params, method_state={
        'target_params': ema(s['target_params'], params, tau),
        'target_batch_stats': extras['target_batch_stats'],
        'center': losses.dino_center(s['center'], extras['teacher_logits'],
                                     m.center_momentum)})
