"""The package's layering: no import circle, and data knows no networks.

Every import counts, also the ones inside functions (lazy imports)."""

import ast
import os

from conftest import REPO

PACKAGE = os.path.join(REPO, 'ssl_pairs')
# What ssl_pairs.data may not import, and what may not import mining.
DATA_MAY_NOT_IMPORT = ('models', 'evals', 'checkpoint', 'sharding', 'mining',
                       'train', 'step', 'methods')
BELOW_MINING = ('data', 'evals', 'models', 'methods', 'step', 'losses',
                'checkpoint', 'sharding', 'optim', 'images', 'state',
                'metrics', 'errors')


def _graph():
  modules = {}
  for folder, _, files in os.walk(PACKAGE):
    for f in files:
      if f.endswith('.py'):
        path = os.path.join(folder, f)
        name = os.path.relpath(path, REPO)[:-3].replace(os.sep, '.')
        modules[name.removesuffix('.__init__')] = path
  edges = {}
  for name, path in modules.items():
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
      if isinstance(node, ast.ImportFrom) and node.module and \
          node.module.startswith('ssl_pairs'):
        for alias in node.names:
          full = f'{node.module}.{alias.name}'
          out.add(full if full in modules else node.module)
      elif isinstance(node, ast.Import):
        out.update(a.name for a in node.names
                   if a.name.startswith('ssl_pairs'))
    edges[name] = {e for e in out if e in modules and e != name}
  return edges


def _cycles(edges):
  index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

  def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      part = []
      while True:
        w = stack.pop()
        on.discard(w)
        part.append(w)
        if w == v:
          break
      if len(part) > 1:
        out.append(sorted(part))

  for v in edges:
    if v not in index:
      visit(v)
  return out


def _layer(module):
  parts = module.split('.')
  return parts[1] if len(parts) > 1 else ''


def test_no_import_circle():
  assert _cycles(_graph()) == []


def test_data_imports_no_networks_and_nothing_below_mining_imports_it():
  edges = _graph()
  bad = [(m, e) for m, out in edges.items() for e in out
         if _layer(m) == 'data' and _layer(e) in DATA_MAY_NOT_IMPORT]
  assert bad == []
  upward = [(m, e) for m, out in edges.items() for e in out
            if _layer(m) in BELOW_MINING and _layer(e) == 'mining']
  assert upward == []


def test_the_check_sees_lazy_imports():
  """A lazy import inside a function is an edge too (else the test above
  could pass while a circle hides in a function body)."""
  edges = _graph()
  assert 'ssl_pairs.data.video' in edges['ssl_pairs.data.pairs']  # Lazy.
