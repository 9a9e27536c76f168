"""Humanoid-walk at the official TD-MPC2 defaults (5M model, MPPI 512x8, batch 256) with many
parallel MJX environments, for GPU/TPU. Playground HumanoidWalk, action repeat 2, 500 steps."""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = 'humanoid-walk'
  c.backend = 'mjx'
  c.impl = 'jax'            # 'warp' on GPU is faster for large batches
  c.num_envs = 64
  c.chunk_steps = 50        # vector steps per collection chunk (x num_envs agent steps)
  c.seed = 1
  c.model_size = 5
  c.model = ml_collections.ConfigDict()
  c.planner = ml_collections.ConfigDict()
  c.train = ml_collections.ConfigDict()
  c.model_scale = ml_collections.ConfigDict()
  c.episode_length = 500
  c.action_repeat = 2
  c.steps = 3_000_000 // 2  # 3M env steps = 1.5M agent steps
  c.seed_steps = 5 * 500 * 64  # 5 episodes per env of random data
  c.updates_per_step = 1.0 / 8  # 8 updates per vector step of 64 envs
  c.update_chunk = 100
  c.buffer_size = 1_000_000
  c.eval_every = 50_000
  c.eval_episodes = 5
  c.checkpoint_every = 50_000
  c.save_buffer = True
  c.keep = 2
  c.wall_minutes = 0.0      # > 0: stop after this many minutes with a checkpoint and an export
  c.export_dtype = 'float32'  # or 'float16' (half the size; loaded as float32)
  return c
