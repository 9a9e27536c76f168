"""Base CPU config for dm_control task-suite agents (walker, cheetah, ...): variants override
``task`` and ``steps``.

Same CPU deviations as experiments/cartpole_cpu.py (model size 1, MPPI 256 samples x 4
iterations, batch 128, 0.5 updates per agent step). The model is trained with the official
planning horizon 3; speculation deeper than 3 plans with a longer horizon at evaluation time.
Builds on experiments/default.py (the official run schedule) and sets only what differs.
"""
import ml_collections

from spec_jax import builders


def get_config() -> ml_collections.ConfigDict:
  c = builders.config_module(__file__, 'default.py').get_config()
  c.update(dict(
      task='walker-walk', backend='dmc', model_size=1,
      steps=20_000,            # agent steps (= 40k env steps with action repeat 2): fits ~1 h
                               # on one core of 2 with a second run beside it
      updates_per_step=0.5, update_chunk=250, eval_every=5_000, eval_episodes=2,
      checkpoint_every=5_000))
  c.planner = ml_collections.ConfigDict(dict(num_samples=256, iterations=4, num_elites=32,
                                             num_pi_trajs=16))
  c.train = ml_collections.ConfigDict(dict(batch_size=128))
  return c


def variant(**overrides) -> ml_collections.ConfigDict:
  """The base config with top-level fields overridden."""
  c = get_config()
  c.update(overrides)
  return c
