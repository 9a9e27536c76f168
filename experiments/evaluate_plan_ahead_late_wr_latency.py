"""Decision latency of late plan-ahead on walker-run on a QUIET machine (nothing else running),
paced at walker's real control period (25 ms x action repeat 2 = 50 ms): 4 episodes (seeds
150..153) of the baseline (its full plan call is the latency reference, in the same run), the
paper's executor and the late plan-ahead variants of experiments/evaluate_plan_ahead_late_wr.py
whose rescue plans use the full planner. Returns on 4
episodes are indicative only (10 episodes: evaluate_plan_ahead_late_wr.py)."""
from spec_jax import builders


def get_config():
  late = builders.config_module(__file__, 'evaluate_plan_ahead_late.py')
  c = builders.config_module(__file__, 'evaluate_plan_ahead_late_wr.py').get_config()
  c.blocks = late.late_blocks(0.5, (None,))
  c.episodes = 4
  c.period_ms = 50.0
  return c
