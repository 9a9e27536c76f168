"""Train a TD-MPC2 agent.

  python launch/train.py --config experiments/cartpole_cpu.py --workdir runs/cartpole
  python launch/train.py --config experiments/humanoid_mjx.py --workdir runs/hw --config.num_envs 256

Rerunning with the same --workdir resumes from its last checkpoint.
"""
from absl import app
from absl import flags
from ml_collections import config_flags

import logs  # launch/logs.py: absl logging set-up for the scripts
from spec_jax import trainer

_CONFIG = config_flags.DEFINE_config_file('config', 'experiments/cartpole_cpu.py',
                                          'Experiment config file.')
_WORKDIR = flags.DEFINE_string('workdir', 'runs/default', 'Output directory (resumes if present).')


def main(argv):
  del argv
  logs.setup()
  result = trainer.train(_CONFIG.value, _WORKDIR.value)
  print({k: v for k, v in result.items() if k in ('agent_step', 'env_step', 'eval_return', 'export_dir')})


if __name__ == '__main__':
  app.run(main)
