"""CPU default: TD-MPC2 (1M model, lighter MPPI) on dm_control cartpole-swingup.

Learns to a clearly non-trivial return within a CPU-hour on 2 cores. Deviations from the
official defaults, all for CPU speed (experiments/dmc_cpu.py): model size 1, MPPI 256 samples /
4 iterations, batch 128, 0.5 updates per agent step; 30k agent steps (60k env steps).
"""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'dmc_cpu.py')
  return base.variant(task='cartpole-swingup', steps=30_000)
