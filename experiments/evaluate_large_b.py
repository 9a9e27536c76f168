"""Second pass of experiments/evaluate_large.py on the same seeds (120..129), without the
baseline: the new MLP at tau 0.638 and open-loop speculation (tau inf), H = 3."""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'evaluate_large.py')
  c = base.get_config()
  c.baseline = False
  c.blocks = (dict(modes=('mlp',), exec_lens=(3,), taus=base.TAUS[1:], tau_quantiles=()),
              dict(modes=('spec',), exec_lens=(3,), taus=(base.INF,), tau_quantiles=()))
  return c
