"""dm_control cheetah-run on 2 CPU cores (experiments/dmc_cpu.py with the task set)."""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'dmc_cpu.py')
  return base.variant(task='cheetah-run')
