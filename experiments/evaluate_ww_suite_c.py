"""Third pass of experiments/evaluate_ww_suite.py on the same seeds (140..149), without the
baseline: the missing execution length 5 for open loop and for the MLP corrector at the
median-mismatch tau (merge with launch/combine_evaluations.py)."""
from spec_jax import builders

INF = float('inf')


def get_config():
  c = builders.config_module(__file__, 'evaluate_ww_suite.py').get_config()
  c.baseline = False
  c.blocks = (dict(modes=('spec',), exec_lens=(5,), taus=(INF,), tau_quantiles=()),
              dict(modes=('mlp',), exec_lens=(5,), taus=(), tau_quantiles=(0.5,)))
  return c
