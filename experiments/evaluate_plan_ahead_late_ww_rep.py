"""Replication of late plan-ahead on walker-walk on FRESH seeds 170..179 (chosen before any
result on them), in ONE run, not paced: the baseline (replan every step, horizon 6), the paper's
executor (MLP, tau = q0.90, H = 3), late plan-ahead with lead 1 and 2, and lead 2 and 1 with
deferred rejections and full-planner rescue plans."""
from spec_jax import builders


def get_config():
  late = builders.config_module(__file__, 'evaluate_plan_ahead_late.py')
  c = late.get_config()
  c.seed = 170
  c.blocks = late.late_blocks(0.9, (None,))
  return c
