"""The shipped walker-run MLP (12 teacher episodes) at the same taus and seeds (120..129) as
experiments/evaluate_large.py, without the baseline (pairs with that run's baseline)."""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'evaluate_large.py')
  c = base.get_config()
  c.baseline = False
  c.blocks = (dict(modes=('mlp',), exec_lens=(3,), taus=base.TAUS, tau_quantiles=()),)
  return c
