"""Humanoid-walk with the paper's native dm_control simulator at the official defaults
(5M model, MPPI 512 samples x 8 iterations, batch 256, 1 update per agent step): the base
config (experiments/default.py) as it is."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'default.py').get_config()
  c.update(dict(task='humanoid-walk', backend='dmc'))
  return c
