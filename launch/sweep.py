"""Vectorised sweep of tau x speculation horizon x seeds x episodes on batched MJX.

  python launch/sweep.py --export runs/cartpole/distill/export --workdir runs/cartpole/sweep
Writes sweep.csv, sweep.md, sweep_pareto.png (median return vs planner calls per horizon) and
sweep_fallback.png (fallback rate vs tau). The grid is sharded over all local devices.

Multi-host (one process per host, same command on each, N hosts, host i):
  python launch/sweep.py --export E --workdir W --config.coordinator HOST0:12355 \
      --config.num_processes N --config.process_id i
Each host runs its share of the seeds on its local devices and writes W/sweep_host<i>.*.
"""
from absl import app
from absl import flags
from ml_collections import config_flags

import logs  # launch/logs.py: absl logging set-up for the scripts
from spec_jax import sweep

_CONFIG = config_flags.DEFINE_config_file('config', 'experiments/sweep_cartpole.py', 'Config.')
_EXPORT = flags.DEFINE_string('export', None, 'Export directory.', required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.', required=True)


def main(argv):
  del argv
  logs.setup()
  paths = sweep.run(_CONFIG.value, _EXPORT.value, _WORKDIR.value)
  print(open(paths['md']).read())


if __name__ == '__main__':
  app.run(main)
