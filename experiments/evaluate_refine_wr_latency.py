"""Decision latency of the refine-every-step executor (experiments/evaluate_refine_wr.py) on a
QUIET machine, paced at a 100 ms period: on this 2-core CPU the full walker plan (~52-60 ms)
that every step's plan-ahead makes does not fit walker's real 50 ms period, so (as for
experiments/evaluate_plan_ahead_late_wr_period.py) the longer period emulates hardware on which
the planner fits; NOT a GPU measurement. Every step after the first waits for one cheap
1 x 32 MPPI iteration from the real latent (the refine), never for a full plan.

4 episodes (seeds 220..223, the first four of the 10-episode run): the baseline (its full
plan call is the latency reference, in the same run) and E = 1 / L = 1, no corrector, refine
every step (1 x 32, init_std 0.27). Returns do not depend on the pacing.

  python launch/evaluate.py --config experiments/evaluate_refine_wr_latency.py \\
      --export agents/walker-run --workdir runs/wr_refine_latency
"""
from spec_jax import builders


def get_config():
  refine = builders.config_module(__file__, 'evaluate_refine_wr.py')
  c = refine.get_config()
  c.blocks = c.blocks[:1]
  c.episodes = 4
  c.period_ms = 100.0
  return c
