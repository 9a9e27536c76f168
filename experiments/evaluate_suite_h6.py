"""Second evaluation pass of the task suite: the baseline that replans every step with the SAME
horizon-6 planner as the speculative modes (and as the distillation teacher), then the points
that did not fit in the first pass (experiments/evaluate_suite.py), most important first.
Same seeds (100..109) and keys, so rows of both passes pair per seed."""
import importlib.util
import os

INF = float('inf')


def get_config():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'evaluate_suite.py')
  spec = importlib.util.spec_from_file_location('evaluate_suite', path)
  base = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(base)
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
