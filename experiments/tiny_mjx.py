"""Tiny MJX config: many parallel Playground environments feeding one replay buffer
(experiments/tiny.py on the 'mjx' backend)."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'tiny.py').get_config()
  c.update(dict(
      backend='mjx', impl='jax', num_envs=4, chunk_steps=10, episode_length=25,
      steps=160,               # 40 vector steps of 4 envs
      seed_steps=80, updates_per_step=0.25, update_chunk=10,
      eval_every=0,            # no dm_control evaluation in the smoke run
      checkpoint_every=80))
  return c
