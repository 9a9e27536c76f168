"""Decision latency of plan-ahead with an anytime fallback on a QUIET machine (nothing else
running): 4 episodes (seeds 100..103) of the baseline (the full plan call, in the same run)
and two fallback planners, 1 x 128 (experiments/evaluate_anytime.py) and 1 x 64 samples.
Returns on 4 episodes are indicative only; the 10-episode returns come from
experiments/evaluate_anytime.py."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_anytime.py').get_config()
  c.episodes = 4
  q = dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.9,), plan_ahead=True)
  c.blocks = (dict(q, fallback_planner=dict(iterations=1, num_samples=128, num_elites=16)),
              dict(q, fallback_planner=dict(iterations=1, num_samples=64, num_elites=8,
                                            num_pi_trajs=8)))
  return c
