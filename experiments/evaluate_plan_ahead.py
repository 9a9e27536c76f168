"""Plan-ahead vs the paper's speculation vs replanning every step, in ONE run (issue 12):
decision latency per step (observation in -> action out, wall clock, including any wait for a
ready plan) p50 / p99 / max, planner calls and return, paced at the task's real control period
(walker: 25 ms control timestep x action repeat 2 = 50 ms). Returns do not depend on the
pacing. Seeds 100..109 as the other suite passes; the baseline replans with the same
horizon-6 planner as the speculative modes. launch/evaluate.py exposes 2 host devices so the
plan-ahead runs on the second one while the host steps the simulator."""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'evaluate_suite_h6.py')
  c = base.get_config()
  c.period_ms = 50.0
  c.blocks = (
      dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.9,), plan_ahead=True),
      dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.9,)),
  )
  return c
