"""The base training config (flax-examples pattern): every run-schedule key of
``spec_jax.builders.RunConfig`` at its defaults (official TD-MPC2: humanoid-walk on dm_control,
5M model, 1 update per agent step) plus empty model / planner / train blocks. Training configs
build on it and set only what differs:

  c = builders.config_module(__file__, 'default.py').get_config()
  c.update(dict(task='cartpole-swingup', steps=200))
"""
import ml_collections

from spec_jax import builders


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict(builders.run_defaults())
  c.model_size = 5
  c.model = ml_collections.ConfigDict()
  c.planner = ml_collections.ConfigDict()
  c.train = ml_collections.ConfigDict()
  return c
