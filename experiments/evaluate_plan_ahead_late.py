"""Late plan-ahead (issue 12.1): the next plan is made L steps before the queue end from the
L-step prediction of the latest REAL latent (``Runtime.ahead_lead`` = L), instead of at the
queue install from the plan's own E-step prediction. In ONE run on walker-walk (seeds 100..109,
MLP corrector, tau = the 90th percentile of the task's mismatch, H = 3, horizon-6 planners):
the baseline, the paper's executor, L = 1 and L = 2 with the paper's rejection (wait for a fresh
plan), L = 2 and L = 1 with deferred rejections (cheap 1 x 64 rescue plans), and the session-4
plan-ahead (L = 0), most important first. Returns and acceptance do not depend on timing; this
run is not paced (``period_ms`` 0): latencies come from experiments/evaluate_plan_ahead_late_
latency.py on a quiet machine."""
from spec_jax import builders

CHEAP64 = dict(iterations=1, num_samples=64, num_elites=8, num_pi_trajs=8)


def late_blocks(quantile: float, rescue_planners):
  """The paper's executor (MLP, tau at ``quantile`` of the mismatch, H = 3), late plan-ahead
  with lead 1 and 2, then lead 2 and 1 with deferred rejections for each rescue planner
  (fallback planner overrides; None: the full planner)."""
  q = dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(quantile,))
  ahead = dict(q, plan_ahead=True)
  defer = lambda lead, fb: dict(ahead, ahead_lead=lead, on_reject='defer',
                                **({} if fb is None else {'fallback_planner': fb}))
  return ((q, dict(ahead, ahead_lead=1), dict(ahead, ahead_lead=2)) +
          tuple(defer(lead, fb) for fb in rescue_planners for lead in (2, 1)))


def get_config():
  c = builders.config_module(__file__, 'evaluate_plan_ahead.py').get_config()
  c.period_ms = 0.0
  classic = dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.9,), plan_ahead=True)
  c.blocks = late_blocks(0.9, (CHEAP64,)) + (classic,)
  return c
