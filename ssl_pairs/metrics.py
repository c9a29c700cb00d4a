"""Training feedback: metrics.jsonl, TensorBoard events and a progress bar.

The step's metrics stay on the device; the loop hands them over in bulk every
``log_every_steps`` (one host sync per flush, not per step), and every step gets
one JSON row in ``workdir/metrics.jsonl``. On resume, rows past the restored
step are dropped first, so the file holds exactly one row per step.
"""

import json
import math
import os
import time
from typing import Dict, List, Optional

import numpy as np

try:
  from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
except ImportError:  # TensorBoard events are optional.
  SummaryWriter = None

try:
  import tqdm  # pylint: disable=g-import-not-at-top
except ImportError:
  tqdm = None


def truncate_jsonl(path: str, max_step: int, key: str = 'step') -> None:
  """Drops rows whose ``key`` exceeds ``max_step`` (and unreadable rows)."""
  if not os.path.exists(path):
    return
  kept = []
  with open(path) as f:
    for line in f:
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue  # A line cut by a kill mid-write.
      if row.get(key, 0) <= max_step:
        kept.append(line if line.endswith('\n') else line + '\n')
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    f.writelines(kept)
  os.replace(tmp, path)


def read_jsonl(path: str) -> List[dict]:
  """All readable rows of a JSONL file ([] if missing)."""
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return rows


def _to_python(v):
  v = np.asarray(v)
  return v.item() if v.ndim == 0 else v.tolist()


def say(text: str) -> None:
  """A user-facing status line on process 0 (library logs stay at WARNING)."""
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_index() == 0:
    print(text, flush=True)


class NonFiniteLossError(RuntimeError):
  """The loss or gradients became NaN/inf; the state was not updated."""


class MetricsLogger:
  """Writes per-step metrics and drives the terminal progress bar.

  Args:
    workdir: run directory (metrics.jsonl and tb/ go there).
    total_steps: last step of the run (for the bar's ETA).
    start_step: steps already done (after a resume).
    pairs_per_step: global batch, to report pairs/s.
    progress: show a tqdm bar.
    write_files: write metrics.jsonl and TensorBoard events (process 0 only,
      so hosts sharing a file system do not write the same files).
  """

  def __init__(self, workdir: str, total_steps: int, start_step: int,
               pairs_per_step: int, progress: bool = True,
               write_files: bool = True):
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self._file, self._tb = None, None
    if write_files:
      truncate_jsonl(self.path, start_step)
      self._file = open(self.path, 'a')
      if SummaryWriter is not None:
        self._tb = SummaryWriter(os.path.join(workdir, 'tb'))
    self._pairs_per_step = pairs_per_step
    self._last_time = time.time()
    self._bar = None
    if progress and tqdm is not None:
      self._bar = tqdm.tqdm(total=total_steps, initial=start_step,
                            unit='step', dynamic_ncols=True, smoothing=0.1)
    self.last_pairs_per_sec = float('nan')
    self._first_rank = None
    self._warned_collapse = False

  def _check_collapse(self, row):
    """Warns once when the effective rank falls below 10 % of its start."""
    rank = row.get('embed_rank')
    if rank is None or self._warned_collapse:
      return
    if self._first_rank is None:
      self._first_rank = (row['step'], rank)
    elif rank < 0.1 * self._first_rank[1]:
      self._warned_collapse = True
      self.message(
          f'Warning: the embeddings are collapsing at step {row["step"]}: '
          f'effective rank {rank:.1f} (was {self._first_rank[1]:.1f} at step '
          f'{self._first_rank[0]}), embed_std {row.get("embed_std", 0):.4f}; '
          'a higher temperature or lower learning rate often helps.')

  def write(self, first_step: int, step_metrics: List[Dict[str, np.ndarray]]):
    """Logs host metrics of steps first_step, first_step+1, ...

    Raises:
      NonFiniteLossError: naming the first step whose loss or gradients were
        not finite (rows up to it are written first).
    """
    now = time.time()
    dt = max(now - self._last_time, 1e-9)
    self._last_time = now
    self.last_pairs_per_sec = len(step_metrics) * self._pairs_per_step / dt
    for i, m in enumerate(step_metrics):
      step = first_step + i
      row = {'step': step, **{k: _to_python(v) for k, v in m.items()}}
      if row.get('nonfinite'):
        if self._file is not None:
          self._file.flush()
        raise NonFiniteLossError(
            f'The loss or gradients became NaN/inf at step {step} (loss '
            f'{row.get("loss")}); the run stopped without updating the '
            'state, and the last checkpoint is the last good one — lower the '
            'learning rate or check the data.')
      row.pop('nonfinite', None)
      row['pairs_per_sec'] = self.last_pairs_per_sec
      self._check_collapse(row)
      if self._file is not None:
        self._file.write(json.dumps(row) + '\n')
      if self._tb is not None:
        for k, v in row.items():
          if k != 'step' and isinstance(v, (int, float)) and math.isfinite(v):
            self._tb.add_scalar(f'train/{k}', v, step)
    if self._file is not None:
      self._file.flush()
    if self._bar is not None and step_metrics:
      last = step_metrics[-1]
      self._bar.set_postfix(loss=f'{float(last["loss"]):.4f}',
                            pairs_s=f'{self.last_pairs_per_sec:.0f}',
                            refresh=False)
      self._bar.update(len(step_metrics))

  def scalars(self, step: int, prefix: str, values: Dict[str, float]):
    """Extra scalars (e.g. evaluations) for TensorBoard."""
    if self._tb is not None:
      for k, v in values.items():
        if isinstance(v, (int, float)) and math.isfinite(v):
          self._tb.add_scalar(f'{prefix}/{k}', v, step)

  def message(self, text: str):
    """Prints a line without breaking the progress bar."""
    if self._bar is not None:
      self._bar.write(text)
    else:
      say(text)

  def close(self):
    if self._file is not None:
      self._file.close()
    if self._tb is not None:
      self._tb.close()
    if self._bar is not None:
      self._bar.close()


def format_seconds(seconds: Optional[float]) -> str:
  """'1h02m', '3m05s' or '12.3s'."""
  if seconds is None or not math.isfinite(seconds):
    return '-'
  if seconds >= 3600:
    return f'{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m'
  if seconds >= 60:
    return f'{int(seconds // 60)}m{int(seconds % 60):02d}s'
  return f'{seconds:.1f}s'
