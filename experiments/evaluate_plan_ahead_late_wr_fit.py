"""Late plan-ahead with a planner that FITS walker's real 50 ms control period on this 2-core
CPU (issue 12.1), paced at 50 ms, on a QUIET machine, fresh seeds 190..199.

The exported speculative planner (horizon 6, 256 samples x 4 iterations) takes about 53 ms a
call here, longer than the period, so a late or rescue plan cannot be ready in time (p99 ~ one
plan call, BUILD_NOTES session 8). Here every plan of the speculative executors (plan-ahead,
rescue, first step) uses 2 iterations instead of 4 (about 28 ms); the baseline keeps the full
planner and is the latency reference (its median plan call, same run). Rows: baseline, the
paper's executor and late plan-ahead L = 1 with deferred rejections, both with the 2-iteration
planner. The same seeds with the full planner, not paced:
experiments/evaluate_plan_ahead_late_wr_rep2.py (the return this reduction costs).

  python launch/evaluate.py --config experiments/evaluate_plan_ahead_late_wr_fit.py \\
      --export agents/walker-run --workdir runs/wr_fit
"""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_plan_ahead_late_wr_rep2.py').get_config()
  c.period_ms = 50.0
  c.spec_planner.iterations = 2
  return c
