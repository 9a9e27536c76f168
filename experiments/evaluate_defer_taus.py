"""Deferred rejections at lower taus (more rejections, so more rescue plans from the real
latent; a deferred step executes the same corrected action an accepted one would): the 1 x 64
rescue planner at tau = the 50th and 75th percentile of the mismatch, 10 episodes on seeds
100..109, unpaced (returns do not depend on the pacing; latencies here are not real-time).
No baseline: pairs with experiments/evaluate_defer.py's (same seeds and keys)."""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'evaluate_defer.py')
  c = base.get_config()
  c.period_ms = 0.0
  c.baseline = False
  c.blocks = (dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.5, 0.75),
                   plan_ahead=True, on_reject='defer', fallback_planner=base.CHEAP64),)
  return c
