"""Compare baseline / speculation / corrected speculation on an exported agent.

  python launch/evaluate.py --export runs/cartpole/distill/export --workdir runs/cartpole/eval
  python launch/evaluate.py --config experiments/evaluate_suite.py --export agents/walker-walk \
      --workdir results/walker_walk
Writes evaluation.csv (every statistic and the per-seed returns), evaluation.md and
evaluation.png (median return with IQR vs planner calls, every point labelled).
"""
import os

# Plan-ahead runs on a second device while the host steps the simulator, rescue plans
# (on_reject 'defer') on a third: on a CPU-only machine expose three host devices (set before
# jax is imported; no effect on accelerators).
if 'xla_force_host_platform_device_count' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_force_host_platform_device_count=3').strip()

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from ml_collections import config_flags

import logs  # launch/logs.py: absl logging set-up for the scripts
from spec_jax import evaluation

_CONFIG = config_flags.DEFINE_config_file('config', 'experiments/evaluate_cartpole.py', 'Config.')
_EXPORT = flags.DEFINE_string('export', None, 'Export directory (with the correctors that '
                              'the corrector modes need).', required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.', required=True)


def main(argv):
  del argv
  logs.setup()
  rows, paths = evaluation.run(_CONFIG.value, _EXPORT.value, _WORKDIR.value)
  print(open(paths['md']).read())
  print(paths)


if __name__ == '__main__':
  app.run(main)
