"""Tiny end-to-end config for tests and smoke runs (seconds per episode on a CPU)."""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = 'cartpole-swingup'
  c.backend = 'dmc'
  c.seed = 0
  c.model_size = 1
  c.model = ml_collections.ConfigDict(dict(latent_dim=32, mlp_dim=64, enc_dim=64))
  c.planner = ml_collections.ConfigDict(dict(num_samples=32, iterations=2, num_elites=4,
                                             num_pi_trajs=4))
  c.train = ml_collections.ConfigDict(dict(batch_size=32))
  c.episode_length = 50
  c.action_repeat = 2
  c.steps = 200
  c.seed_steps = 100
  c.updates_per_step = 1.0
  c.update_chunk = 50
  c.buffer_size = 10_000
  c.eval_every = 200
  c.eval_episodes = 1
  c.checkpoint_every = 100
  c.save_buffer = True
  c.keep = 2
  c.wall_minutes = 0.0      # > 0: stop after this many minutes with a checkpoint and an export
  c.export_dtype = 'float32'  # or 'float16' (half the size; loaded as float32)
  return c
