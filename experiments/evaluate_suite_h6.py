"""Second evaluation pass of the task suite: the baseline that replans every step with the SAME
horizon-6 planner as the speculative modes (and as the distillation teacher), then the points
that did not fit in the first pass (experiments/evaluate_suite.py), most important first.
Same seeds (100..109) and keys, so rows of both passes pair per seed."""
from spec_jax import builders

INF = float('inf')


def get_config():
  base = builders.config_module(__file__, 'evaluate_suite.py')
  c = base.get_config()
  c.base_planner.horizon = 6
  c.blocks = (
      dict(modes=('mlp',), exec_lens=(3,), taus=(0.5,), tau_quantiles=()),
      dict(modes=('spec',), exec_lens=(3,), taus=(INF,), tau_quantiles=()),
      dict(modes=('transformer',), exec_lens=(3,), taus=(0.5,), tau_quantiles=()),
      dict(modes=('spec',), exec_lens=(6,), taus=(INF,), tau_quantiles=()),
      dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.9,)),
  )
  return c
