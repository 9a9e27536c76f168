"""The large-distillation MLP at tau 0.638, H = 3, seeds 130..139 (pairs with
experiments/evaluate_large_rep.py's baseline)."""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'evaluate_large.py')
  c = builders.config_module(__file__, 'evaluate_large_rep.py').get_config()
  c.baseline = False
  c.blocks = (dict(modes=('mlp',), exec_lens=(3,), taus=base.TAUS[1:], tau_quantiles=()),)
  return c
