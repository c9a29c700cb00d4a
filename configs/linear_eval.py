r"""python main.py --config=configs/linear_eval.py --config.restore=runs/simclr_sp

Evaluate a trained encoder: kNN and linear probe from an Orbax checkpoint.

  python main.py --config=configs/linear_eval.py:smoke --config.restore=W

The backbone and input resolution come from the checkpoint's own config;
datasets (comma list, '?' = optional, any npz file or image folder allowed)
and probe settings from config.eval. Results go to <restore>/eval.json and
eval.md (merged with earlier results).
"""

import ml_collections

from configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, smoke=False)
  c = ml_collections.ConfigDict()
  c.task = 'eval'
  c.name = common.run_name('linear_eval', arg)
  c.restore = ''        # Workdir (or its checkpoints/ folder) to evaluate.
  c.restore_step = 0    # 0 = latest checkpoint.
  c.data_dir = ''       # '' = the checkpoint's, else $SSL_PAIRS_DATA_DIR.
  c.download = True     # Download a missing builtin dataset (data.download).
  c.seed = 0
  c.eval = common.eval_config()
  if args.smoke:
    c.eval.datasets = 'tiny_imagenet'
    c.eval.train_limit = 400
    c.eval.test_limit = 200
    c.eval.probe_max_iter = 50
    c.eval.batch_size = 64
  return c
