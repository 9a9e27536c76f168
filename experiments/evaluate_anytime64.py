"""The cheaper anytime fallback (1 MPPI iteration, 64 samples, 8 elites, 8 policy
trajectories) of experiments/evaluate_anytime_latency.py on the 10 paired episodes of
experiments/evaluate_anytime.py (seeds 100..109; no baseline in this pass: it pairs with that
run's baseline, merged with launch/combine_evaluations.py)."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_anytime.py').get_config()
  c.baseline = False
  c.blocks = (dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.9,), plan_ahead=True,
                   fallback_planner=dict(iterations=1, num_samples=64, num_elites=8,
                                         num_pi_trajs=8)),)
  return c
