"""Decision latency of late plan-ahead against the control period, on a QUIET machine (issue
12.1). On this 2-core CPU a full walker plan call (~64 ms) is longer than walker's real control
period (50 ms), so a late or rescue plan cannot finish in the period it is given; a GPU plans in
a few ms. Pacing at longer periods shows the latency this executor reaches once the planner
fits the period (an emulation of faster planning hardware, NOT a GPU measurement):

  python launch/evaluate.py --config experiments/evaluate_plan_ahead_late_wr_period.py \
      --config.period_ms=100 --export agents/walker-run --workdir runs/wr_period_100

4 episodes (seeds 150..153, as experiments/evaluate_plan_ahead_late_wr_latency.py, whose 50 ms
rows are the first point): the baseline (its full plan call is the latency reference, in the
same run) and late plan-ahead with lead 1 and deferred rejections with full-planner rescue plans
(MLP corrector, tau = the median mismatch, H = 3). Returns and acceptance do not depend on the
pacing (10-episode values: experiments/evaluate_plan_ahead_late_wr.py)."""
from spec_jax import builders


def get_config():
  late = builders.config_module(__file__, 'evaluate_plan_ahead_late.py')
  c = builders.config_module(__file__, 'evaluate_plan_ahead_late_wr.py').get_config()
  c.blocks = late.late_blocks(0.5, (None,))[4:]
  c.episodes = 4
  c.period_ms = 100.0
  return c
