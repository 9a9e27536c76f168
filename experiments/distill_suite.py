"""Corrector distillation for the task-suite agents (walker, cheetah): the teacher plans with
horizon 6 (the models were trained with 3) so speculation depths k = 1..5 are covered, 12
teacher episodes (2 held out), float16 storage for the shipped export."""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'distill_cartpole.py')
  c = base.get_config()
  c.episodes = 12
  c.holdout = 0.17
  c.planner.horizon = 6
  c.storage_dtype = 'float16'
  return c
