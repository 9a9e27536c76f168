"""Third pass on walker-run's seeds 150..159 (pairs with experiments/evaluate_plan_ahead_late_wr.py,
no baseline): late plan-ahead with lead 1 and deferred rejections whose rescue plans use a
planner between the cheap 1 x 64 one (fits the 50 ms control period on this CPU, costs return)
and the full 4 x 256 one (keeps return, does not fit the period here): 1 x 256 and 2 x 256."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_plan_ahead_late_wr.py').get_config()
  c.baseline = False
  d = dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.5,), plan_ahead=True,
           ahead_lead=1, on_reject='defer')
  c.blocks = (dict(d, fallback_planner=dict(iterations=1)),
              dict(d, fallback_planner=dict(iterations=2)))
  return c
