r"""ssl_pairs command line: train + evaluate a config, or evaluate a checkpoint.

  python main.py --config=configs/simclr_sp.py
  python main.py --config=configs/simclr_sp.py:runlocal --workdir=runs/quick
  python main.py --config=configs/linear_eval.py --config.restore=runs/simclr_sp
  python main.py --config=configs/simclr_sp.py --config.batch_size=512

The same program as ``ssl-pairs train`` (``ssl_pairs/tools/main.py``, where
the flags are documented); ``python main.py --help`` lists them.
"""

from absl import flags

from ssl_pairs.tools import main as _main

flags.adopt_module_key_flags(_main)

if __name__ == '__main__':
  _main.run()
