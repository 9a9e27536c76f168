"""Humanoid-walk on one GPU inside a lent device session (issue 15): experiments/humanoid_mjx.py
(official 5M model, MPPI 512x8, batch 256, Playground HumanoidWalk) with a wall-clock limit per
command, a short seed phase and a float16 export small enough to bring back.

Deviations from official TD-MPC2 (recorded in BUILD_NOTES.md): 64 parallel environments with
1/8 update per agent step (official: 1 env, 1 update per step); seed phase 6,400 agent steps
(official 2,500) followed by as many pretraining updates.
"""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'humanoid_mjx.py')
  c = base.get_config()
  c.update(dict(num_envs=64, chunk_steps=50, seed_steps=6_400, updates_per_step=1.0 / 8,
                update_chunk=100, eval_every=100_000, eval_episodes=3, checkpoint_every=100_000,
                wall_minutes=8.0, export_dtype='float16'))
  return c
