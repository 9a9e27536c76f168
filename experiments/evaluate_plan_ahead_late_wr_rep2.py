"""Second replication of the best late plan-ahead executor on walker-run (issue 12.1), on FRESH
seeds 190..199 (chosen before any result on them), not paced: the baseline, the paper's executor
and late plan-ahead with lead 1 and deferred rejections with full-planner rescue plans, exactly
as experiments/evaluate_plan_ahead_late_wr_rep.py (seeds 180..189). Decided before the run: its
10 paired episodes are pooled with seeds 150..159 and 180..189 (30 in all) whatever they give.
The same seeds with a planner that fits the control period:
experiments/evaluate_plan_ahead_late_wr_fit.py."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_plan_ahead_late_wr_rep.py').get_config()
  c.seed = 190
  return c
