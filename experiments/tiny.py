"""Tiny end-to-end config for tests and smoke runs (seconds per episode on a CPU)."""
import ml_collections

from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'default.py').get_config()
  c.update(dict(task='cartpole-swingup', backend='dmc', seed=0, model_size=1, episode_length=50,
                steps=200, seed_steps=100, update_chunk=50, buffer_size=10_000, eval_every=200,
                eval_episodes=1, checkpoint_every=100))
  c.model = ml_collections.ConfigDict(dict(latent_dim=32, mlp_dim=64, enc_dim=64))
  c.planner = ml_collections.ConfigDict(dict(num_samples=32, iterations=2, num_elites=4,
                                             num_pi_trajs=4))
  c.train = ml_collections.ConfigDict(dict(batch_size=32))
  return c
