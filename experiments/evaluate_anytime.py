"""Plan-ahead with an anytime fallback (issue 12.1): the replans the gate forces run a cheaper
MPPI (1 iteration, 128 samples, 16 elites instead of 6 x 512 / 64) warm-started from the ready
plan's mean, which was planned for that very step from the predicted latent. In ONE run with
the baseline (replan every step), the paper's speculation and plan-ahead with full fallbacks,
on the same seeds (100..109), paced at walker's 50 ms control period."""
from spec_jax import builders

CHEAP = dict(iterations=1, num_samples=128, num_elites=16)


def get_config():
  c = builders.config_module(__file__, 'evaluate_plan_ahead.py').get_config()
  q = dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.9,))
  c.blocks = (dict(q, plan_ahead=True, fallback_planner=CHEAP),
              dict(q),
              dict(q, plan_ahead=True))
  return c
