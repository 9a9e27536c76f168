"""Task-suite evaluation for a newly trained agent in one pass, most important points first:
the horizon-6 baseline (replan every step with the speculative modes' planner), open-loop
speculation at H = 3, both correctors at the paper's tau 0.5, the Transformer at the 90th
percentile of the task's mismatch, verified speculation without correction, open loop at
H = 6. Seeds 100..109 as in experiments/evaluate_suite.py (outputs rewritten after every
point, so a run stopped for time keeps the finished ones)."""
from spec_jax import builders

INF = float('inf')


def get_config():
  base = builders.config_module(__file__, 'evaluate_suite_h6.py')
  c = base.get_config()
  c.blocks = (
      dict(modes=('spec',), exec_lens=(3,), taus=(INF,), tau_quantiles=()),
      dict(modes=('transformer', 'mlp'), exec_lens=(3,), taus=(0.5,), tau_quantiles=()),
      dict(modes=('transformer',), exec_lens=(3,), taus=(), tau_quantiles=(0.9,)),
      dict(modes=('spec',), exec_lens=(3,), taus=(0.5,), tau_quantiles=()),
      dict(modes=('spec',), exec_lens=(6,), taus=(INF,), tau_quantiles=()),
  )
  return c
