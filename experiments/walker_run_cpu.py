"""dm_control walker-run on 2 CPU cores (experiments/dmc_cpu.py with the task set)."""
import importlib.util
import os


def get_config():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'dmc_cpu.py')
  spec = importlib.util.spec_from_file_location('dmc_cpu', path)
  base = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(base)
  return base.variant(task='walker-run')
