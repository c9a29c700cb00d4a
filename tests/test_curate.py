"""Automatically curated semantic pairs (ssl_pairs.mining.curate)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import common
from conftest import REPO
from ssl_pairs.data import sources
from ssl_pairs.errors import UserError
from ssl_pairs.mining import curate


def _source(tmp_path, n_per=6, classes=3, dim=5, seed=0, boxes=None):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 255, (n_per * classes, 8, 8, 3)).astype(np.uint8)
  labels = np.repeat(np.arange(classes), n_per)
  path = str(tmp_path / 'src.npz')
  np.savez(path, images=images, labels=labels)
  src = sources.load_split(path, 'train', '', None)
  if boxes is not None:
    src.boxes = boxes
  return src, rng.normal(0, 1, (len(labels), dim)).astype(np.float32)


def test_partner_is_the_nearest_free_same_class_image_by_brute_force():
  # Three well separated couples: each image's nearest other image is its
  # couple-mate, so the constraint never binds and the choice must be the
  # brute-force nearest neighbour.
  x = np.array([[0, 0], [0.1, 0], [5, 5], [5, 5.2], [9, 0], [9.3, 0]])
  partner = curate.nearest_available_partners(x)
  d = ((x[:, None] - x[None]) ** 2).sum(-1)
  np.fill_diagonal(d, np.inf)
  np.testing.assert_array_equal(partner, d.argmin(1))


@pytest.mark.parametrize('seed', range(5))
def test_every_image_is_a_partner_once_and_never_its_own(seed):
  x = np.random.default_rng(seed).normal(0, 1, (9, 4))
  partner = curate.nearest_available_partners(x)
  assert sorted(partner.tolist()) == list(range(9))  # Used twice in all.
  assert not np.any(partner == np.arange(9))


def test_prior_curation_pairs_same_class_images_chosen_by_the_prior(tmp_path):
  src, emb = _source(tmp_path)
  path = str(tmp_path / 'prior.npy')
  np.save(path, emb)
  pairs, report = curate.curate(src, f'prior:npy:{path}', 'all', 0, 0,
                                common.data_config('gps').gps)
  a, p = pairs.anchors, pairs.partners
  assert np.all(src.labels[a] == src.labels[p]) and not np.any(a == p)
  counts = np.bincount(np.concatenate([a, p]), minlength=len(src))
  assert counts.max() == 2 and sorted(a.tolist()) == list(range(len(src)))
  # Per class: the greedy nearest-free choice, recomputed here.
  for c in range(3):
    pool = np.sort(a[src.labels[a] == c])
    mine = dict(zip(a.tolist(), p.tolist()))
    expected = pool[curate.nearest_available_partners(emb[pool])]
    assert [mine[i] for i in pool] == expected.tolist()
  # The report: curated pairs are closer in the prior than random ones.
  assert report['mean_distance_curated'] < report['mean_distance_random']
  cls = report['classes']['0']
  d = lambda i, j: float(((emb[i] - emb[j]) ** 2).sum())
  own = [d(i, mine[i]) for i in a[src.labels[a] == 0]]
  assert cls['mean_distance_curated'] == pytest.approx(np.mean(own))


def test_boxes_keep_exactly_the_images_whose_box_passes(tmp_path):
  # Box sides 64 (whole image), 32 (a quarter) and 16 (1/16) in turn.
  sides = np.array([64, 32, 16] * 6)
  boxes = np.stack([np.zeros(18), np.zeros(18), sides - 1, sides - 1], 1)
  src, _ = _source(tmp_path, boxes=boxes.astype(np.int64))
  pairs, report = curate.curate(src, 'boxes:0.25', 'all', 0, 0)
  used = set(pairs.anchors.tolist()) | set(pairs.partners.tolist())
  assert used == {i for i in range(18) if sides[i] >= 32}
  assert np.all(src.labels[pairs.anchors] == src.labels[pairs.partners])
  assert not np.any(pairs.anchors == pairs.partners)
  assert report['classes']['0']['kept_fraction'] == pytest.approx(4 / 6)
  assert report['images_kept'] == 12 and report['images_offered'] == 18


def test_bad_specs_and_missing_boxes_are_one_sentence(tmp_path):
  src, _ = _source(tmp_path)
  for spec, message in (('prior:clip', 'unknown prior'),
                        ('boxes:2', 'box fraction in'),
                        ('boxes:x', 'box fraction in'),
                        ('nearest', 'not a curation spec'),
                        ('boxes:0.3', 'needs object boxes')):
    with pytest.raises(UserError, match=message):
      curate.curate(src, spec, 'all', 0, 0, common.data_config('gps').gps)


def test_build_pairs_curate_writes_the_file_and_its_report(tmp_path):
  src, _ = _source(tmp_path)
  out = tmp_path / 'out'
  proc = subprocess.run(
      [sys.executable, '-m', 'ssl_pairs.tools.build_pairs',
       f'--dataset={tmp_path / "src.npz"}', '--pairs_per_class=0',
       '--match=images', '--curate=prior:pixels', '--pixel_size=4',
       f'--out_dir={out}'], cwd=REPO, capture_output=True, text=True,
      timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'curated (prior:pixels)' in proc.stdout
  report = json.loads((out / 'curated_report.json').read_text())
  assert report['pairs'] == 18
  assert os.path.getsize(out / 'curated_pairs.csv') > 0
  assert 'random same-class' in (out / 'curated_report.md').read_text()
  bad = subprocess.run(
      [sys.executable, '-m', 'ssl_pairs.tools.build_pairs',
       f'--dataset={tmp_path / "src.npz"}', '--curate=prior:pixels',
       f'--out_dir={out}'], cwd=REPO, capture_output=True, text=True,
      timeout=300)
  assert bad.returncode == 2 and 'pass --match=images' in bad.stderr
