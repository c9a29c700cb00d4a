r"""python launch/knn_benchmark.py [--cases=cifar10,1000000x128] [--queries=10000]

Build time and peak memory of the exact k-nearest-neighbour table that the
mined pair sources (gps, spps) use (:mod:`ssl_pairs.mining.neighbours`), and of
faiss-cpu's exact ``IndexFlatL2`` when it is installed, on the same data.

Cases: ``cifar10`` (the 50k CIFAR-10 training images as the default GPS prior:
16 px pixels, 768-d) and ``<N>x<D>`` synthetic Gaussian embeddings. Each case
runs in its own subprocess so its peak resident memory (VmHWM) is its own.
Exact kNN costs N_queries × N_keys × D, linear in the queries: when
``--queries`` is below N, that many queries are searched against all N keys
and the full build time is extrapolated (and marked so); peak memory does not
depend on the number of queries (blocks are fixed-size).
"""

import json
import os
import subprocess
import sys
import time

from absl import flags

_CASES = flags.DEFINE_list('cases', ['cifar10', '1000000x128'],
                           'cifar10 and/or <N>x<D> synthetic sets.')
_QUERIES = flags.DEFINE_integer(
    'queries', 10000, 'Queries timed per case (all N if larger).')
_K = flags.DEFINE_integer('k', 4, 'Neighbours per item.')
_FAISS = flags.DEFINE_bool('faiss', True, 'Also time faiss-cpu if installed.')
_ONE = flags.DEFINE_string('one', '', 'Internal: run one case, print JSON.')


def _peak_rss_mib() -> float:
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) / 1024
  return float('nan')


def _data(case):
  import numpy as np  # pylint: disable=g-import-not-at-top
  if case == 'cifar10':
    from ssl_pairs.data import sources  # pylint: disable=g-import-not-at-top
    src = sources.load_split('cifar10', 'train',
                             sources.resolve_data_dir(''), 16)
    return src.images.reshape(len(src), -1).astype(np.float32) / 255.0
  n, d = (int(v) for v in case.split('x'))
  return np.random.default_rng(0).standard_normal((n, d), np.float32)


def run_one(spec):
  case, engine = spec.split(':')
  x = _data(case)
  n_queries = min(_QUERIES.value, len(x))
  queries = x[:n_queries]
  base_rss = _peak_rss_mib()
  if engine == 'ssl_pairs':  # The blocked jax search (not the faiss path).
    from ssl_pairs.mining import neighbours  # pylint: disable=g-import-not-at-top
    neighbours.nearest_neighbours(queries[:1024], _K.value, keys=x[:8192],
                                  backend='jax')
    t0 = time.time()
    neighbours.nearest_neighbours(queries, _K.value, keys=x, backend='jax')
    seconds = time.time() - t0
  else:
    import faiss  # pylint: disable=g-import-not-at-top
    faiss.omp_set_num_threads(os.cpu_count())
    t0 = time.time()
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    index.search(queries, _K.value)
    seconds = time.time() - t0
  return {'case': case, 'engine': engine, 'n': len(x), 'd': x.shape[1],
          'queries': n_queries, 'seconds': seconds,
          'full_seconds': seconds * len(x) / n_queries,
          'extrapolated': n_queries < len(x),
          'data_mib': x.nbytes / 2**20,
          'peak_rss_mib': _peak_rss_mib(), 'rss_before_mib': base_rss}


def main(argv):
  del argv
  if _ONE.value:
    print('RESULT ' + json.dumps(run_one(_ONE.value)))
    return
  engines = ['ssl_pairs']
  if _FAISS.value:
    try:
      import faiss  # pylint: disable=g-import-not-at-top,unused-import
      engines.append('faiss')
    except ImportError:
      print('faiss-cpu is not installed: timing ssl_pairs only.')
  rows = []
  for case in _CASES.value:
    for engine in engines:
      proc = subprocess.run(
          [sys.executable, os.path.abspath(__file__), f'--one={case}:{engine}',
           f'--queries={_QUERIES.value}', f'--k={_K.value}'],
          capture_output=True, text=True, check=False)
      lines = [l for l in proc.stdout.splitlines() if l.startswith('RESULT ')]
      if not lines:
        print(proc.stderr[-2000:])
        raise SystemExit(f'{case} with {engine} failed.')
      rows.append(json.loads(lines[0][7:]))
      r = rows[-1]
      print(f'{case} {engine}: {r["seconds"]:.4g} s for {r["queries"]} '
            f'queries', flush=True)
  print()
  print('| set | N × D | engine | queries timed | s | full build s | '
        'peak RSS MiB (data MiB) |')
  print('|---|---|---|---|---|---|---|')
  for r in rows:
    full = f'{r["full_seconds"]:.4g}' + (' (extrapolated)' if r[
        'extrapolated'] else '')
    print(f'| {r["case"]} | {r["n"]} × {r["d"]} | {r["engine"]} | '
          f'{r["queries"]} | {r["seconds"]:.4g} | {full} | '
          f'{r["peak_rss_mib"]:.0f} ({r["data_mib"]:.0f}) |')


if __name__ == '__main__':
  from ssl_pairs import cli  # pylint: disable=g-import-not-at-top
  cli.run(main, clear=False)
