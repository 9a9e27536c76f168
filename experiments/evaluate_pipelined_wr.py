"""Pipelined plan-ahead on walker-run (issue 12.1): execution length E = 1 with late plan-ahead
lead L = 1, i.e. every step's plan is made DURING the previous step, from the one-step
prediction z' = d(z_real, a) of the latest real latent, and adopted at the next step when the
gate accepts ||z_real' - z'|| (the MLP corrector corrects its first action for the mismatch).
It plans as often as the baseline (one plan per control period) but no step waits for a plan
unless the gate rejects (paper's rejection: a blocking fresh plan; 'defer': the rejected plan is
continued, corrected, and a rescue plan is made for the next step). The late E = 3 executor
plans only every third step, which is where its return gap (0.926 pooled) may come from.

Declared before any result (this docstring is committed before the run): FRESH seeds 200..209,
not paced (returns do not depend on timing), in ONE run, most important first: the baseline,
E = 1 / L = 1 with the MLP corrector at tau = the median mismatch (paper's rejection), the same
with deferred rejections (full-planner rescue), E = 1 / L = 1 without a corrector and without a
gate (tau = inf: plain pipelined MPC), then the paper's executor and the late E = 3 executor of
sessions 8-10 on the same seeds. Reported whatever it gives. Latency at the real 50 ms period:
experiments/evaluate_pipelined_wr_fit.py.

  python launch/evaluate.py --config experiments/evaluate_pipelined_wr.py \\
      --export agents/walker-run --workdir runs/wr_pipelined
"""
from spec_jax import builders

INF = float('inf')


def pipelined_blocks(quantile: float):
  """E = 1, lead 1: MLP with the paper's rejection, MLP with deferred rejections, no corrector
  and no gate."""
  q = dict(modes=('mlp',), exec_lens=(1,), taus=(), tau_quantiles=(quantile,), plan_ahead=True,
           ahead_lead=1)
  return (q, dict(q, on_reject='defer'),
          dict(modes=('spec',), exec_lens=(1,), taus=(INF,), tau_quantiles=(), plan_ahead=True,
               ahead_lead=1))


def get_config():
  late = builders.config_module(__file__, 'evaluate_plan_ahead_late.py')
  c = builders.config_module(__file__, 'evaluate_plan_ahead_late_wr.py').get_config()
  c.seed = 200
  blocks = late.late_blocks(0.5, (None,))
  c.blocks = pipelined_blocks(0.5) + (blocks[0], blocks[4])
  return c
