"""CPU default: TD-MPC2 (1M model, lighter MPPI) on dm_control cartpole-swingup.

Learns to a clearly non-trivial return within a CPU-hour on 2 cores. Deviations from the
official defaults, all for CPU speed: model size 1, MPPI 256 samples / 4 iterations,
batch 128, 0.5 updates per agent step, 30k agent steps (60k env steps).
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = 'cartpole-swingup'
  c.backend = 'dmc'
  c.seed = 1
  c.model_size = 1
  c.model = ml_collections.ConfigDict()
  c.planner = ml_collections.ConfigDict(dict(num_samples=256, iterations=4, num_elites=32,
                                             num_pi_trajs=16))
  c.train = ml_collections.ConfigDict(dict(batch_size=128))
  c.episode_length = 500
  c.action_repeat = 2
  c.steps = 30_000
  c.seed_steps = 2_500
  c.updates_per_step = 0.5
  c.update_chunk = 250
  c.buffer_size = 1_000_000
  c.eval_every = 5_000
  c.eval_episodes = 2
  c.checkpoint_every = 5_000
  c.save_buffer = True
  c.keep = 2
  return c
