"""Task-suite evaluation for a newly trained agent in one pass, most important points first:
the horizon-6 baseline (replan every step with the speculative modes' planner), open-loop
speculation at H = 3, both correctors at the paper's tau 0.5, the Transformer at the 90th
percentile of the task's mismatch, verified speculation without correction, open loop at
H = 6. Seeds 100..109 as in experiments/evaluate_suite.py (outputs rewritten after every
point, so a run stopped for time keeps the finished ones)."""
import importlib.util
import os

INF = float('inf')


def get_config():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'evaluate_suite_h6.py')
  spec = importlib.util.spec_from_file_location('evaluate_suite_h6', path)
  base = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(base)
  c = base.get_config()
  c.blocks = (
      dict(modes=('spec',), exec_lens=(3,), taus=(INF,), tau_quantiles=()),
      dict(modes=('transformer', 'mlp'), exec_lens=(3,), taus=(0.5,), tau_quantiles=()),
      dict(modes=('transformer',), exec_lens=(3,), taus=(), tau_quantiles=(0.9,)),
      dict(modes=('spec',), exec_lens=(3,), taus=(0.5,), tau_quantiles=()),
      dict(modes=('spec',), exec_lens=(6,), taus=(INF,), tau_quantiles=()),
  )
  return c
