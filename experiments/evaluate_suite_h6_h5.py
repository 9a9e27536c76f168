"""Fourth evaluation pass of the cheetah-run suite: the corrected modes at execution length 5
(and the Transformer at 6) with the paper's tau 0.5, and open loop at 5, on the same seeds
(100..109) and keys as experiments/evaluate_suite_h6_more.py. That pass ran before the one-exp
Mish (float rounding differs), so this pass evaluates its own horizon-6 baseline first."""
from spec_jax import builders

INF = float('inf')


def get_config():
  c = builders.config_module(__file__, 'evaluate_suite_h6_more.py').get_config()
  c.baseline = True
  c.blocks = (dict(modes=('transformer', 'mlp'), exec_lens=(5,), taus=(0.5,), tau_quantiles=()),
              dict(modes=('spec',), exec_lens=(5,), taus=(INF,), tau_quantiles=()),
              dict(modes=('transformer',), exec_lens=(6,), taus=(0.5,), tau_quantiles=()))
  return c
