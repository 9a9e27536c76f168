"""Decision latency of late plan-ahead on a QUIET machine (nothing else running), paced at
walker's real control period (50 ms): 4 episodes (seeds 100..103) of the baseline (its full
plan call is the latency reference, in the same run) and the late plan-ahead variants of
experiments/evaluate_plan_ahead_late.py. Returns on 4 episodes are indicative only (10-episode
returns: evaluate_plan_ahead_late.py)."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_plan_ahead_late.py').get_config()
  c.episodes = 4
  c.period_ms = 50.0
  return c
