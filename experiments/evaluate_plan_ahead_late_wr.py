"""Late plan-ahead (issue 12.1) on walker-run, the task where the paper's executor keeps >= 95%
of the baseline (MLP corrector at the median-mismatch tau, H = 3: 0.97 / 0.97 / 0.95 on seeds
120..129 / 130..139 / 140..149). FRESH seeds 150..159 (chosen before any result on them), in
ONE run: the horizon-6 baseline, the paper's executor, late plan-ahead with lead 1 and 2 with
the paper's rejection (wait for a fresh plan) and with deferred rejections (rescue plans with
the full planner, then with a cheap 1 x 64 one). Not paced: returns and acceptance do not
depend on timing; latencies come from experiments/evaluate_plan_ahead_late_wr_latency.py on a
quiet machine."""
from spec_jax import builders


def get_config():
  late = builders.config_module(__file__, 'evaluate_plan_ahead_late.py')
  c = builders.config_module(__file__, 'evaluate_suite_h6.py').get_config()
  c.seed = 150
  c.period_ms = 0.0
  c.blocks = late.late_blocks(0.5, (None, late.CHEAP64))
  return c
