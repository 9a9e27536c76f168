"""Learned acceptance vs the fixed-tau norm gate (issue 12) on the same agent, corrector,
execution length and seeds (100..109, as experiments/evaluate_suite*.py, so rows pair with the
earlier passes and their horizon-6 baseline via launch/combine_evaluations.py): the MLP
corrector at H = 3 with the norm gate at task-relative taus, and with the learned gate at
rejection-probability thresholds. No baseline in this pass (baseline=False)."""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'evaluate_suite_h6.py')
  c = base.get_config()
  c.baseline = False
  c.blocks = (
      dict(modes=('mlp',), exec_lens=(3,), taus=(0.5,), gate='learned'),
      dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.5,)),
      dict(modes=('mlp',), exec_lens=(3,), taus=(0.7,), gate='learned'),
      dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.75,)),
  )
  return c
