r"""python launch/mutation_check.py [--only=ID,...] [--jobs=1]

A curated mutation check: single-edit bugs of the kind that matter to a
researcher (a view drawn with the wrong key, a temperature in the wrong place,
a target of the wrong view, a threshold off by one), each put into a fresh
copy of the repository (``git worktree`` of HEAD plus the working tree's
changes, so the checkout you work in is never touched), with the tests that
cover its module run against it. A mutant is *killed* when those tests fail.

Prints a table (id, module, bug, killed/survived, seconds) and the kill rate,
and writes it to ``--out`` (default runs/mutation_check/results.md). Add a
mutant by appending to ``MUTANTS``: the ``old`` text must occur exactly once in
its file. ``EQUIVALENT`` lists the mutants judged to change nothing a
researcher can observe, with the reason; they are reported but excluded from
the rate. See docs/development.md.
"""

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Mutant:
  id: str
  path: str
  old: str
  new: str
  tests: str  # pytest arguments (files and -k expressions).
  bug: str


M = Mutant
MUTANTS = (
    # ------------------------------------------------------------- losses
    M('nt_xent_temp', 'ssl_pairs/losses.py', 's = (z @ z.T) / temperature',
      's = (z @ z.T) * temperature', 'tests/test_losses.py tests/test_losses_methods.py',
      'NT-Xent multiplies by τ'),
    M('nt_xent_self', 'ssl_pairs/losses.py',
      "others = valid[:, None] & valid[None, :] & ~jnp.eye(m, dtype=bool)",
      "others = valid[:, None] & valid[None, :]", 'tests/test_losses.py tests/test_losses_methods.py',
      'NT-Xent keeps each view as its own negative'),
    M('infonce_queue_sign', 'ssl_pairs/losses.py',
      'neg = q @ queue.astype(jnp.float32).T / temperature',
      'neg = -q @ queue.astype(jnp.float32).T / temperature',
      'tests/test_losses.py tests/test_losses_methods.py', 'MoCo negatives with the wrong sign'),
    M('byol_no_stop', 'ssl_pairs/losses.py',
      'z = l2_normalize(jax.lax.stop_gradient(z).astype(jnp.float32))',
      'z = l2_normalize(z.astype(jnp.float32))',
      'tests/test_losses.py tests/test_losses_methods.py tests/test_method_wiring.py',
      'BYOL target not stopped'),
    M('vicreg_ddof', 'ssl_pairs/losses.py',
      'std = jnp.sqrt(jnp.var(z, axis=0, ddof=1) + 1e-4)',
      'std = jnp.sqrt(jnp.var(z, axis=0) + 1e-4)', 'tests/test_losses.py tests/test_losses_methods.py',
      'VICReg biased variance'),
    M('barlow_lambda', 'ssl_pairs/losses.py',
      'return scale * (on + lambd * _off_diagonal_sq_sum(c))',
      'return scale * (on + _off_diagonal_sq_sum(c))', 'tests/test_losses.py tests/test_losses_methods.py',
      'Barlow Twins ignores λ'),
    M('dino_center_momentum', 'ssl_pairs/losses.py',
      'return center * momentum + batch_center * (1.0 - momentum)',
      'return center * (1.0 - momentum) + batch_center * momentum',
      'tests/test_losses_methods.py tests/test_methods.py -k "dino or center"',
      'DINO centre EMA weights swapped'),
    M('dino_teacher_no_center', 'ssl_pairs/losses.py',
      'jax.lax.stop_gradient(center).astype(jnp.float32)) / teacher_temp,',
      '0.0) / teacher_temp,', 'tests/test_losses.py tests/test_losses_methods.py',
      'DINO teacher not centred'),
    # ------------------------------------------------------------ methods
    M('dino_temps_swapped', 'ssl_pairs/methods/dino.py',
      'm.student_temp, self.teacher_temperature(step))',
      'self.teacher_temperature(step), m.student_temp)',
      'tests/test_method_wiring.py tests/test_methods.py -k dino',
      'DINO student and teacher temperatures swapped'),
    M('dino_not_frozen', 'ssl_pairs/methods/dino.py',
      'frozen = jnp.where(self._frozen(step), jnp.zeros_like(last), last)',
      'frozen = last', 'tests/test_methods.py -k dino',
      'DINO last layer not frozen in epoch 1'),
    M('byol_same_view', 'ssl_pairs/methods/byol.py',
      'loss = (losses.byol_loss(p[:b], zt[b:]) +\n'
      '            losses.byol_loss(p[b:], zt[:b]))',
      'loss = (losses.byol_loss(p[:b], zt[:b]) +\n'
      '            losses.byol_loss(p[b:], zt[b:]))',
      'tests/test_method_wiring.py tests/test_methods.py -k byol',
      'BYOL predicts the target of the same view'),
    M('ema_swapped', 'ssl_pairs/methods/base.py',
      'lambda t, o: momentum * t + (1.0 - momentum) * o',
      'lambda t, o: (1.0 - momentum) * t + momentum * o',
      'tests/test_methods.py', 'EMA weights swapped'),
    M('ema_schedule_flat', 'ssl_pairs/methods/base.py',
      'return 1.0 - (1.0 - base) * (jnp.cos(math.pi * progress) + 1.0) / 2.0',
      'return base + 0.0 * progress', 'tests/test_methods.py',
      'EMA momentum not annealed to 1'),
    M('moco_other_view', 'ssl_pairs/methods/mocov2.py',
      'loss = losses.moco_infonce(q[:b], keys_for(k[b:]), queue, m.temperature,',
      'loss = losses.moco_infonce(q[:b], keys_for(k[:b]), queue, m.temperature,',
      'tests/test_method_wiring.py tests/test_methods.py -k moco',
      'MoCo query meets the key of its own view'),
    M('moco_queue_ptr', 'ssl_pairs/methods/mocov2.py',
      "'queue_ptr': (s['queue_ptr'] + keys.shape[0]) % queue.shape[0]})",
      "'queue_ptr': s['queue_ptr']})", 'tests/test_methods.py -k moco',
      'MoCo queue pointer never advances'),
    M('simclr_ids', 'ssl_pairs/methods/simclr.py',
      'ids = jnp.concatenate([jnp.arange(b), jnp.arange(b)])',
      'ids = jnp.arange(2 * b)',
      'tests/test_method_wiring.py tests/test_methods.py -k simclr',
      'SimCLR has no positives'),
    M('vicreg_same_branch', 'ssl_pairs/methods/vicreg.py',
      'loss, terms = self.pair_loss(z[:b], z[b:])',
      'loss, terms = self.pair_loss(z[:b], z[:b])',
      'tests/test_method_wiring.py tests/test_methods.py -k "vicreg or barlow"',
      'VICReg/Barlow compare a branch with itself'),
    M('pirl_identity_jigsaw', 'ssl_pairs/methods/pirl.py',
      'return jnp.take_along_axis(x, perms[:, :, None, None, None], axis=1)',
      'return x', 'tests/test_methods.py -k pirl',
      'PIRL jigsaw is the identity permutation'),
    M('pirl_bank_momentum', 'ssl_pairs/methods/pirl.py',
      'mixed = self.config.method.bank_momentum * bank[idx] + (',
      'mixed = 0.0 * bank[idx] + (', 'tests/test_methods.py -k pirl',
      'PIRL memory bank without its EMA'),
    M('supervised_one_view', 'ssl_pairs/methods/supervised.py',
      "labels = jnp.concatenate([batch['label'], batch['label']])",
      "labels = jnp.concatenate([batch['label'], batch['label'][::-1]])",
      'tests/test_method_wiring.py', 'supervised labels misaligned'),
    # --------------------------------------------------------------- step
    M('nonfinite_loss_only', 'ssl_pairs/step.py',
      'finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)',
      'finite = jnp.isfinite(loss)', 'tests/test_properties.py tests/test_train.py -k "nan or nonfinite"',
      'non-finite guard checks the loss only'),
    M('step_rng_fixed', 'ssl_pairs/step.py',
      'rng = jax.random.fold_in(jax.random.key(seed), state.step)',
      'rng = jax.random.key(seed)',
      'tests/test_properties.py tests/test_methods.py tests/test_device_augment.py',
      'the same random key at every step'),
    # --------------------------------------------------------------- data
    M('view2_same_seed', 'ssl_pairs/data/pipeline.py',
      "        'view2': augment.apply_view(image_b, rng, self.specs[1],",
      "        'view2': augment.apply_view(image_b, np.random.default_rng(\n"
      "            [self.seed, epoch, item]), self.specs[1],",
      'tests/test_properties.py tests/test_pipeline.py',
      'view 2 drawn with view 1\'s seed (different generator, same draws)'),
    M('shuffle_unseeded', 'ssl_pairs/data/pipeline.py',
      '.shuffle(seed=seed).repeat()', '.shuffle(seed=0).repeat()',
      'tests/test_properties.py tests/test_pipeline.py',
      'shuffle ignores the run seed'),
    M('process_slice', 'ssl_pairs/data/pipeline.py',
      'return step * global_batch + process_index * local + row',
      'return step * global_batch + row', 'tests/test_pipeline.py',
      'every process reads the same rows'),
    M('device_view2_key', 'ssl_pairs/data/device_augment.py',
      'raw2, streams[:, 2])', 'raw2, streams[:, 1])',
      'tests/test_properties.py tests/test_device_augment.py',
      'device path: view 2 uses view 1\'s key'),
    M('device_jitter_order', 'ssl_pairs/data/device_augment.py',
      'order = jax.random.permutation(k_order, 4)', 'order = jnp.arange(4)',
      'tests/test_device_augment.py tests/test_properties.py',
      'device colour-jitter order fixed'),
    M('crop_min_scale_ignored', 'ssl_pairs/data/augment.py',
      'strong = ViewSpec(crop=True, crop_scale=(lo, 1.0), flip_prob=0.5,',
      'strong = ViewSpec(crop=True, crop_scale=(0.08, 1.0), flip_prob=0.5,',
      'tests/test_properties.py tests/test_augment.py',
      'strong preset ignores crop_min_scale'),
    M('jitter_order_fixed', 'ssl_pairs/data/augment.py',
      'for op in rng.permutation(4):', 'for op in range(4):',
      'tests/test_properties.py tests/test_augment.py',
      'colour-jitter order fixed'),
    M('crop_ratio_log', 'ssl_pairs/data/augment.py',
      'aspect = math.exp(rng.uniform(*log_ratio))',
      'aspect = rng.uniform(*log_ratio)', 'tests/test_augment.py tests/test_device_augment.py',
      'crop aspect ratio not log-uniform'),
    M('pair_transform_everywhere', 'ssl_pairs/data/pipeline.py',
      'return (anchor == partner and self.pair_spec is not None and\n'
      '            self.pairs.augment_self_pairs)',
      'return anchor == partner and self.pair_spec is not None',
      'tests/test_pipeline.py', 'pair transform on every self-pair'),
    M('semantic_self_pairs', 'ssl_pairs/data/pairs.py',
      'offset = 1 + (i // k) % (k - 1)', 'offset = (i // k) % (k - 1)',
      'tests/test_pairs.py', 'semantic pairs of an image with itself'),
    M('pair_file_partner_class', 'ssl_pairs/data/pairs.py',
      'if source.labels[a] != source.labels[b]:', 'if False:',
      'tests/test_pairs.py', 'cross-class pair-file rows accepted'),
    M('resample_own_slot', 'ssl_pairs/data/pair_sets.py',
      '    if slot >= own:\n      slot += 1\n', '',
      'tests/test_pairs.py', 'resampled partner can be the anchor'),
    M('gps_draw_first', 'ssl_pairs/data/pair_sets.py',
      'return anchor, int(row[rng.integers(len(row))])',
      'return anchor, int(row[0])', 'tests/test_pairs.py',
      'GPS always pairs the nearest neighbour'),
    M('temporal_cross_shot', 'ssl_pairs/data/video.py',
      'gap = min(gap, end - 1 - start)  # A short shot caps the gap.',
      'gap = gap', 'tests/test_mined.py -k temporal',
      'temporal pairs cross a cut'),
    # -------------------------------------------------------------- evals
    M('knn_query_unnormalised', 'ssl_pairs/evals/knn.py',
      'sim = l2_normalize(block) @ train.T', 'sim = block @ train.T',
      'tests/test_properties.py tests/test_evals.py',
      'kNN query not L2-normalised'),
    M('knn_vote_unweighted', 'ssl_pairs/evals/knn.py',
      'top_sim / temperature)[..., None]', '0.0 * top_sim)[..., None]',
      'tests/test_properties.py tests/test_evals.py',
      'kNN votes not weighted by similarity'),
    M('probe_unstandardised', 'ssl_pairs/evals/linear_probe.py',
      'mean, std = xtr.mean(0), xtr.std(0) + 1e-6',
      'mean, std = 0.0, 1.0', 'tests/test_properties.py tests/test_evals.py',
      'linear probe without feature standardisation'),
    M('probe_ignores_grid', 'ssl_pairs/evals/linear_probe.py',
      'best = max(l2_grid, key=lambda l2: (val_acc[l2], l2))',
      'best = l2_grid[0]', 'tests/test_properties.py tests/test_evals.py',
      'linear probe ignores its λ grid'),
    M('probe_no_bias_exclusion', 'ssl_pairs/evals/linear_probe.py',
      "return ce + 0.5 * l2 * jnp.sum(params['w']**2)",
      "return ce + 0.5 * l2 * (jnp.sum(params['w']**2) + "
      "jnp.sum(params['b']**2))", 'tests/test_evals.py tests/test_properties.py',
      'probe penalises the bias'),
    M('ris_cap', 'ssl_pairs/evals/invariance.py',
      'p = min((1.0 - 1.0 / len(classes)) * 100, 95)',
      'p = (1.0 - 1.0 / len(classes)) * 100', 'tests/test_invariance.py',
      'RIS threshold cap at the 95th percentile dropped'),
    M('ris_neg_threshold', 'ssl_pairs/evals/invariance.py',
      't_neg = -np.sort(-f, axis=0)[index]  # Descending order, as theirs.',
      't_neg = np.sort(f, axis=0)[int((n * (100 - p)) // 100)]',
      'tests/test_invariance.py',
      'RIS negative threshold at the ascending (100 − p) % index (the old '
      'code\'s)'),
    M('ris_small_sets', 'ssl_pairs/evals/invariance.py',
      '    if len(members) < 3:\n      continue\n', '',
      'tests/test_invariance.py', 'RIS keeps sets under 3 images'),
    # --------------------------------------------------------- checkpoint
    M('resume_any_config', 'ssl_pairs/checkpoint.py',
      '  if unsafe:\n    a, b = _flat_pair(saved, current)',
      '  if False:\n    a, b = _flat_pair(saved, current)',
      'tests/test_train.py', 'resume with another config accepted'),
    M('added_key_any_value', 'ssl_pairs/checkpoint.py',
      "  a.update({k: v for k, v in ADDED_KEYS.items() if k not in a and k in b})",
      '  pass', 'tests/test_train.py tests/test_reliability.py',
      'a setting added later is safe at any value'),
)

# Mutants that change nothing observable, with the reason (excluded from the
# rate; listed in the report).
EQUIVALENT = {}


def _worktree(dest):
  """A copy of HEAD plus the working tree's tracked changes, at ``dest``."""
  subprocess.run(['git', 'worktree', 'add', '--detach', dest, 'HEAD'],
                 cwd=REPO, check=True, capture_output=True)
  diff = subprocess.run(['git', 'diff', 'HEAD'], cwd=REPO, check=True,
                        capture_output=True).stdout
  if diff:
    subprocess.run(['git', 'apply'], cwd=dest, input=diff, check=True)


def _run_tests(dest, tests, timeout):
  env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
  args = [sys.executable, '-m', 'pytest', '-x', '-q', '-n0', '-p',
          'no:cacheprovider', '--no-header', '-o', 'addopts=']
  for part in _split(tests):
    args.append(part)
  try:
    proc = subprocess.run(args, cwd=dest, env=env, capture_output=True,
                          text=True, timeout=timeout)
  except subprocess.TimeoutExpired:
    return 'timeout', ''
  return proc.returncode, proc.stdout[-800:]


def _split(tests):
  import shlex  # pylint: disable=g-import-not-at-top
  return shlex.split(tests)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[1])
  parser.add_argument('--only', default='', help='Comma list of mutant ids.')
  parser.add_argument('--list', action='store_true', help='List and stop.')
  parser.add_argument('--timeout', type=int, default=900,
                      help='Seconds per mutant\'s tests.')
  parser.add_argument('--out', default=os.path.join(
      REPO, 'runs', 'mutation_check', 'results.md'))
  args = parser.parse_args()
  chosen = [m for m in MUTANTS
            if not args.only or m.id in args.only.split(',')]
  if args.list:
    for m in chosen:
      print(f'{m.id:28} {m.path:34} {m.bug}')
    return
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    dest = os.path.join(tmp, 'tree')
    _worktree(dest)
    try:
      base_code, _ = _run_tests(dest, 'tests/test_losses.py', args.timeout)
      if base_code != 0:
        sys.exit('The unmutated tree fails tests/test_losses.py; fix it first.')
      for i, m in enumerate(chosen, 1):
        path = os.path.join(dest, m.path)
        with open(path) as f:
          original = f.read()
        count = original.count(m.old)
        if count != 1:
          sys.exit(f'mutant {m.id}: its text occurs {count} times in {m.path}; '
                   'make it unique.')
        with open(path, 'w') as f:
          f.write(original.replace(m.old, m.new))
        t0 = time.time()
        code, tail = _run_tests(dest, m.tests, args.timeout)
        seconds = time.time() - t0
        with open(path, 'w') as f:
          f.write(original)
        # pytest exit 1: tests failed (killed); 0: all passed (survived);
        # anything else (collection error, timeout) says nothing about the
        # tests and is reported as such.
        killed = code == 1
        status = ('equivalent' if m.id in EQUIVALENT else
                  'killed' if killed else 'SURVIVED' if code == 0 else
                  f'ERROR ({code})')
        rows.append((m, status, seconds))
        print(f'[{i}/{len(chosen)}] {m.id:28} {status:10} {seconds:6.1f} s',
              flush=True)
        if not killed and m.id not in EQUIVALENT and tail.strip():
          print('    ' + tail.strip().splitlines()[-1])
    finally:
      subprocess.run(['git', 'worktree', 'remove', '--force', dest], cwd=REPO,
                     capture_output=True)
      shutil.rmtree(dest, ignore_errors=True)
  counted = [r for r in rows if r[1] in ('killed', 'SURVIVED')]
  killed = sum(r[1] == 'killed' for r in counted)
  rate = 100.0 * killed / max(len(counted), 1)
  lines = ['# Mutation check', '',
           f'`python launch/mutation_check.py` at `{_head()}`: '
           f'**{killed} of {len(counted)} mutants killed ({rate:.1f} %)**'
           + (f'; {len(rows) - len(counted)} not counted (judged equivalent, '
              'or their tests could not run)' if len(rows) > len(counted)
              else '') + '.', '',
           '| mutant | file | bug | result | seconds |',
           '|---|---|---|---|---|']
  for m, status, seconds in rows:
    lines.append(f'| {m.id} | {m.path} | {m.bug} | {status} | '
                 f'{seconds:.0f} |')
  for mid, why in EQUIVALENT.items():
    lines.append(f'\n- `{mid}` is equivalent: {why}')
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


def _head():
  return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO,
                        capture_output=True, text=True).stdout.strip()


if __name__ == '__main__':
  main()
