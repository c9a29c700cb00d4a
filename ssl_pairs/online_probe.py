"""Online linear probe: a classifier trained inside the train step.

solo-learn reports its numbers this way: a linear layer on the backbone's
pooled features of the anchor view, under ``stop_gradient``, trained with its
own optimizer alongside the method, labels used only there. Its state lives in
``TrainState.method_state['online_probe']``, which the step takes out before
the method sees the state and puts back after, so the method's loss, its
updates and its state are those of a run without it (tests check the encoder
bit for bit). The features are the evaluation's (BatchNorm running
statistics, ``train=False``), so the test accuracy at the end
(``Evaluator``, the pretraining dataset's test split) is measured on the
features the classifier learnt on. Costs one extra backbone forward per step.

Why it differs from the offline probe (``evals/linear_probe.py``): it sees
augmented views, one SGD pass per step over features that move as the encoder
trains, no feature standardisation and no λ search — so its number is a
cheaper, lower one (solo-learn's users ask the same of theirs).
"""

import jax
import jax.numpy as jnp
import optax

KEY = 'online_probe'
# solo-learn's classifier settings: SGD, lr 0.1, momentum 0.9, no decay.
LEARNING_RATE = 0.1
MOMENTUM = 0.9


def enabled(config) -> bool:
  return bool(config.eval.get('online_probe', False))


def optimizer() -> optax.GradientTransformation:
  return optax.sgd(LEARNING_RATE, momentum=MOMENTUM)


def init(feature_dim: int, num_classes: int):
  """Zero-initialised classifier and its optimizer state."""
  params = {'w': jnp.zeros((feature_dim, num_classes), jnp.float32),
            'b': jnp.zeros((num_classes,), jnp.float32)}
  return {'params': params, 'opt_state': optimizer().init(params)}


def logits(params, features):
  return features.astype(jnp.float32) @ params['w'] + params['b']


def update(probe_state, features, labels, keep):
  """One SGD step on (features, labels); the old state where ``keep`` is
  False (a non-finite step of the method, or of the probe itself).

  Returns:
    (new probe state, {'online_probe_loss', 'online_probe_acc'} of the batch,
    accuracy in %, before the update).
  """
  features = jax.lax.stop_gradient(features)

  def loss_fn(params):
    out = logits(params, features)
    loss = optax.softmax_cross_entropy_with_integer_labels(out, labels).mean()
    return loss, out

  (loss, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      probe_state['params'])
  updates, opt_state = optimizer().update(grads, probe_state['opt_state'],
                                          probe_state['params'])
  new = {'params': optax.apply_updates(probe_state['params'], updates),
         'opt_state': opt_state}
  keep = keep & jnp.isfinite(loss)
  new = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, probe_state)
  acc = 100.0 * jnp.mean(jnp.argmax(out, -1) == labels)
  return new, {'online_probe_loss': loss, 'online_probe_acc': acc}


def accuracy(params, features, labels) -> float:
  """Top-1 % of the classifier on (features, labels) (numpy or jax)."""
  pred = jnp.argmax(logits(params, jnp.asarray(features)), -1)
  return float(100.0 * jnp.mean(pred == jnp.asarray(labels)))
