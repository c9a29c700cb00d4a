r"""python launch/reference/ris_authors.py --authors=<demystifyssl checkout>

Reference numbers for the Top-K Representation Invariance Score, produced by
the *authors'* code: Purushwalkam & Gupta's ``measure_invariances.py``
(github.com/senthilps8/demystifyssl, commit 407f294), run unchanged on
synthetic feature sets, and written to ``tests/data/ris_reference.json``.
``tests/test_invariance.py`` checks :func:`ssl_pairs.evals.invariance.
topk_invariance_score` against those numbers on the same inputs, which it
rebuilds from the cases' seeds with :func:`make_case`.

Not part of the suite: it needs torch and a checkout of the authors'
repository (``git clone https://github.com/senthilps8/demystifyssl``); hydra
is not needed (its decorator is stubbed, the script passes the config).

How the authors' function is run: their ``main(args)`` loads
``<save_dir>/alldata.pth`` (``{'feat', 'instance', 'classes'}``) with
``torch.load``, prints the mean Top-10/25 scores to three decimals and
returns nothing. The script writes each case's file, calls ``main`` and
reads ``mean_inv_scores`` and ``firing_percent`` from ``main``'s frame as it
returns (``sys.setprofile``), so the numbers keep full precision. A case
whose features have fewer neurons than K makes their code raise IndexError
(``cummeanscore[K - 1]``); the script records that as ``null``.
"""

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import types

import numpy as np

# Each case: name, classes, sets per class, images per set (an int or a list
# cycled over the sets), neurons, feature kind, seed. Shapes cover few and
# many classes (either side of the 95 % cap at 20 classes), fewer neurons
# than K, signed and ReLU-like (ties at zero) features, sets under 3 images
# and a class whose sets are all under 3 images.
CASES = (
    dict(name='many_classes', classes=30, sets=5, size=5, dim=32,
         kind='signed', seed=0),
    dict(name='few_classes', classes=3, sets=4, size=6, dim=40,
         kind='signed', seed=1),
    dict(name='relu_ties', classes=10, sets=3, size=5, dim=48, kind='relu',
         seed=2),
    dict(name='fewer_neurons_than_k', classes=5, sets=4, size=4, dim=16,
         kind='signed', seed=3),
    # The same features with 16 constant neurons appended: a constant neuron
    # never fires in a set (ratio 0), so its K=10 is the K=10 the authors'
    # code cannot report for the 16-neuron case.
    dict(name='fewer_neurons_padded', classes=5, sets=4, size=4, dim=16,
         kind='signed', seed=3, pad_constant=16),
    dict(name='small_sets', classes=8, sets=4, size=[1, 2, 3, 5, 4, 2, 6],
         dim=32, kind='signed', seed=4, all_small_class=True),
    dict(name='two_classes_relu', classes=2, sets=6, size=[3, 4, 5], dim=64,
         kind='relu', seed=5),
    dict(name='cap_at_25_classes', classes=25, sets=3, size=4, dim=30,
         kind='signed', seed=6),
    dict(name='sparse_relu_many', classes=40, sets=2, size=[2, 3, 4, 5],
         dim=28, kind='sparse_relu', seed=7),
)
KS = (10, 25)


def make_case(case):
  """(features float32 [N, D], set_ids [N], class_ids [N]) of one case.

  Each set's images share a per-set mean (so neurons fire together within a
  set, as an invariant representation's do) plus per-image noise; rows are
  shuffled and ids are non-contiguous, so grouping by id is exercised.
  """
  rng = np.random.default_rng(case['seed'])
  sizes = case['size'] if isinstance(case['size'], list) else [case['size']]
  set_ids, class_ids, rows = [], [], []
  s = 0
  for c in range(case['classes']):
    for _ in range(case['sets']):
      size = sizes[s % len(sizes)]
      if case.get('all_small_class') and c == 0:
        size = min(size, 2)  # Class 0: every set under 3 images.
      mean = rng.standard_normal(case['dim'])
      rows.append(mean + 0.7 * rng.standard_normal((size, case['dim'])))
      set_ids += [1000 + 7 * s] * size
      class_ids += [3 * c + 11] * size
      s += 1
  f = np.concatenate(rows)
  if case['kind'] == 'relu':
    f = np.maximum(f, 0.0)
  elif case['kind'] == 'sparse_relu':
    f = np.maximum(f - 1.0, 0.0)  # Most values zero: many ties.
  perm = rng.permutation(len(f))
  if case.get('pad_constant'):
    f = np.concatenate([f, np.full((len(f), case['pad_constant']), 0.25)], 1)
  return (f[perm].astype(np.float32), np.asarray(set_ids)[perm],
          np.asarray(class_ids)[perm])


def _load_authors_main(path):
  """The authors' ``main`` with hydra's decorator stubbed out."""
  hydra = types.ModuleType('hydra')
  hydra.main = lambda **_: (lambda f: f)
  hydra.utils = types.ModuleType('hydra.utils')
  hydra.utils.to_absolute_path = lambda p: p
  sys.modules['hydra'], sys.modules['hydra.utils'] = hydra, hydra.utils
  namespace = {'__name__': 'measure_invariances'}
  with open(os.path.join(path, 'measure_invariances.py')) as f:
    exec(compile(f.read(), 'measure_invariances.py', 'exec'), namespace)  # pylint: disable=exec-used
  return namespace['main']


def run_authors(main, features, set_ids, class_ids):
  """{K: score or None} from the authors' ``main`` on these inputs."""
  import torch  # pylint: disable=g-import-not-at-top
  captured = {}

  def profiler(frame, event, _):
    if event == 'return' and frame.f_code is main.__code__:
      captured.update(frame.f_locals)

  with tempfile.TemporaryDirectory() as d:
    torch.save({'feat': features, 'instance': list(set_ids),
                'classes': list(class_ids)}, os.path.join(d, 'alldata.pth'))
    args = types.SimpleNamespace(
        dataset=types.SimpleNamespace(data_dir=d, save_dir=d),
        model=types.SimpleNamespace(load_path=d),
        hparams=types.SimpleNamespace(exp_name='synthetic'))
    sys.setprofile(profiler)
    try:
      with contextlib.redirect_stdout(io.StringIO()):
        main(args)
    except IndexError:  # Fewer neurons than K: cummeanscore[K - 1].
      return {k: None for k in KS}, 'IndexError'
    finally:
      sys.setprofile(None)
  scale = 100 - captured['firing_percent']
  return {k: float(captured['mean_inv_scores'][i] * scale)
          for i, k in enumerate(KS)}, None


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[1])
  parser.add_argument('--authors', required=True,
                      help='Checkout of senthilps8/demystifyssl.')
  parser.add_argument('--out', default=os.path.join(
      os.path.dirname(__file__), '..', '..', 'tests', 'data',
      'ris_reference.json'))
  args = parser.parse_args()
  # torch >= 2.6 loads with weights_only=True, which refuses numpy arrays;
  # the authors' call (torch.load(path)) predates that default.
  os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'
  authors_main = _load_authors_main(args.authors)
  out = []
  for case in CASES:
    scores, error = run_authors(authors_main, *make_case(case))
    # Their loop computes K=10 and K=25 per class together, so a crash at
    # K=25 loses K=10 too; their function is kept unchanged and the crash
    # recorded.
    out.append({**case, 'scores': {str(k): v for k, v in scores.items()},
                'authors_error': error})
    print(f'{case["name"]:>22}: ' + ', '.join(
        f'K={k} {v if v is None else round(v, 6)}' for k, v in scores.items())
        + (f' ({error})' if error else ''))
  with open(args.out, 'w') as f:
    json.dump({'source': 'senthilps8/demystifyssl@407f294 '
                         'measure_invariances.py, run by '
                         'launch/reference/ris_authors.py',
               'ks': list(KS), 'cases': out}, f, indent=1)
    f.write('\n')
  print(f'Wrote {args.out}')


if __name__ == '__main__':
  main()
