"""Decision latency (quiet machine, 50 ms pacing, 4 episodes, seeds 150..153) of the rescue
planners of experiments/evaluate_plan_ahead_late_wr_rescue.py; the full plan call to compare
with is the baseline's in experiments/evaluate_plan_ahead_late_wr_latency.py (same seeds)."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_plan_ahead_late_wr_rescue.py').get_config()
  c.episodes = 4
  c.period_ms = 50.0
  return c
