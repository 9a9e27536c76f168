"""Replication of the best late plan-ahead executor on walker-run on FRESH seeds 180..189 (chosen
before any result on them), in ONE run, not paced: the baseline (replan every step, horizon 6),
the paper's executor (MLP, tau = the median mismatch, H = 3) and late plan-ahead with lead 1 and
deferred rejections with full-planner rescue plans (experiments/evaluate_plan_ahead_late_wr.py,
seeds 150..159: 0.94 of the baseline at 95.8% of queue ends accepted)."""
from spec_jax import builders


def get_config():
  late = builders.config_module(__file__, 'evaluate_plan_ahead_late.py')
  c = builders.config_module(__file__, 'evaluate_plan_ahead_late_wr.py').get_config()
  c.seed = 180
  blocks = late.late_blocks(0.5, (None,))
  c.blocks = (blocks[0], blocks[4])
  return c
