"""Humanoid-walk at the official TD-MPC2 defaults (5M model, MPPI 512x8, batch 256) with many
parallel MJX environments, for GPU/TPU. Playground HumanoidWalk, action repeat 2, 500 steps.
Evaluated during training on dm_control (MJX has no host loop: ``eval_backend``)."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'default.py').get_config()
  c.update(dict(
      task='humanoid-walk', backend='mjx',
      impl='jax',              # 'warp' on GPU is faster for large batches
      num_envs=64,
      chunk_steps=50,          # vector steps per collection chunk (x num_envs agent steps)
      steps=3_000_000 // 2,    # 3M env steps = 1.5M agent steps
      seed_steps=5 * 500 * 64,  # 5 episodes per env of random data
      updates_per_step=1.0 / 8,  # 8 updates per vector step of 64 envs
      update_chunk=100,
      checkpoint_every=50_000))
  return c
