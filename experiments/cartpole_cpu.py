"""CPU default: TD-MPC2 (1M model, lighter MPPI) on dm_control cartpole-swingup.

Learns to a clearly non-trivial return within a CPU-hour on 2 cores. Deviations from the
official defaults, all for CPU speed (experiments/dmc_cpu.py): model size 1, MPPI 256 samples /
4 iterations, batch 128, 0.5 updates per agent step; 30k agent steps (60k env steps).
"""
import importlib.util
import os


def get_config():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'dmc_cpu.py')
  spec = importlib.util.spec_from_file_location('dmc_cpu', path)
  base = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(base)
  return base.variant(task='cartpole-swingup', steps=30_000)
