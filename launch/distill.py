"""Distil correctors from the replanning teacher and export them with the world model.

  python launch/distill.py --export runs/cartpole/export --workdir runs/cartpole/distill
  python launch/distill.py --config experiments/distill_suite.py --export runs/walker_walk/export \
      --workdir runs/walker_walk/distill
"""
from absl import app
from absl import flags
from ml_collections import config_flags

import logs  # launch/logs.py: absl logging set-up for the scripts
from spec_jax import distill

_CONFIG = config_flags.DEFINE_config_file('config', 'experiments/distill_cartpole.py', 'Config.')
_EXPORT = flags.DEFINE_string('export', None, 'Agent export directory (launch/train.py output).',
                              required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.', required=True)


def main(argv):
  del argv
  logs.setup()
  report = distill.run(_CONFIG.value, _EXPORT.value, _WORKDIR.value)
  for kind in report['kinds']:
    print(f"{kind}: held-out mse {report[kind]['mse_corrected']:.5f} "
          f"(uncorrected {report[kind]['mse_uncorrected']:.5f})")


if __name__ == '__main__':
  app.run(main)
