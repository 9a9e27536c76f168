"""Replication of the learned-acceptance point (issue 12.2 / issue 10's target) on NEW seeds
(110..119, used by no earlier pass; the agent trained on seed 1, the heads on teacher episodes
with seed 2): the horizon-6 baseline, open-loop speculation, the MLP corrector with the norm
gate at the median mismatch, and with the learned gate at p > 0.7 (the threshold of the first
run, not re-chosen), all at H = 3 in one run on the same seeds."""
from spec_jax import builders

INF = float('inf')


def get_config():
  c = builders.config_module(__file__, 'evaluate_suite_h6.py').get_config()
  c.seed = 110
  c.blocks = (
      dict(modes=('mlp',), exec_lens=(3,), taus=(0.7,), gate='learned'),
      dict(modes=('spec',), exec_lens=(3,), taus=(INF,), tau_quantiles=()),
      dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.5,)),
  )
  return c
