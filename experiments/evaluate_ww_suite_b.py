"""Second pass of experiments/evaluate_ww_suite.py on the same seeds (140..149), without the
baseline (paired with the first pass through launch/combine_evaluations.py): the MLP corrector's
tau sweep at H = 3 (0.05 .. 1.0, the paper's 0.5, and the 25th / 90th percentiles of the task's
mismatch), then the Transformer and verified speculation without correction at the median
mismatch, H = 3."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_ww_suite.py').get_config()
  c.baseline = False
  c.blocks = (dict(modes=('mlp',), exec_lens=(3,), taus=(0.05, 0.2, 0.5, 1.0),
                   tau_quantiles=(0.25, 0.9)),
              dict(modes=('transformer', 'spec'), exec_lens=(3,), taus=(), tau_quantiles=(0.5,)))
  return c
