"""Humanoid-walk with the paper's native dm_control simulator at the official defaults
(5M model, MPPI 512 samples x 8 iterations, batch 256, 1 update per agent step)."""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = 'humanoid-walk'
  c.backend = 'dmc'
  c.seed = 1
  c.model_size = 5
  c.model = ml_collections.ConfigDict()
  c.planner = ml_collections.ConfigDict()
  c.train = ml_collections.ConfigDict()
  c.episode_length = 500
  c.action_repeat = 2
  c.steps = 1_500_000
  c.seed_steps = 2_500
  c.updates_per_step = 1.0
  c.update_chunk = 500
  c.buffer_size = 1_000_000
  c.eval_every = 50_000
  c.eval_episodes = 5
  c.checkpoint_every = 25_000
  c.save_buffer = True
  c.keep = 2
  c.wall_minutes = 0.0      # > 0: stop after this many minutes with a checkpoint and an export
  c.export_dtype = 'float32'  # or 'float16' (half the size; loaded as float32)
  return c
