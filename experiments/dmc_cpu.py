"""Base CPU config for dm_control task-suite agents (walker, cheetah, ...): variants override
``task`` and ``steps``.

Same CPU deviations as experiments/cartpole_cpu.py (model size 1, MPPI 256 samples x 4
iterations, batch 128, 0.5 updates per agent step). The model is trained with the official
planning horizon 3; speculation deeper than 3 plans with a longer horizon at evaluation time.
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = 'walker-walk'
  c.backend = 'dmc'
  c.seed = 1
  c.model_size = 1
  c.model = ml_collections.ConfigDict()
  c.planner = ml_collections.ConfigDict(dict(num_samples=256, iterations=4, num_elites=32,
                                             num_pi_trajs=16))
  c.train = ml_collections.ConfigDict(dict(batch_size=128))
  c.episode_length = 500
  c.action_repeat = 2
  c.steps = 20_000          # agent steps (= 40k env steps with action repeat 2): fits ~1 h
                            # on one core of 2 with a second run beside it
  c.seed_steps = 2_500
  c.updates_per_step = 0.5
  c.update_chunk = 250
  c.buffer_size = 1_000_000
  c.eval_every = 5_000
  c.eval_episodes = 2
  c.checkpoint_every = 5_000
  c.save_buffer = True
  c.keep = 2
  c.wall_minutes = 0.0      # > 0: stop after this many minutes with a checkpoint and an export
  c.export_dtype = 'float32'  # or 'float16' (half the size; loaded as float32)
  return c


def variant(**overrides) -> ml_collections.ConfigDict:
  """The base config with top-level fields overridden."""
  c = get_config()
  c.update(overrides)
  return c
