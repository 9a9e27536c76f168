"""Issue 10's missing walker-walk points on the shipped agent, seeds 140..149 (unused before):
the horizon-6 baseline, open-loop speculation at execution lengths 3, 6, 2, 4 and the MLP
corrector at the task's median mismatch at 3, 6, 2, 4, then a tau sweep of the MLP at H = 3
(the 25th and 90th percentiles of the mismatch, 0.2 and 1.0), most important first (outputs are
rewritten after every point, so a run stopped for time keeps the finished ones)."""
from spec_jax import builders

INF = float('inf')
LENS = (3, 6, 2, 4)


def get_config():
  c = builders.config_module(__file__, 'evaluate_suite_h6.py').get_config()
  c.seed = 140
  c.blocks = (dict(modes=('spec',), exec_lens=LENS, taus=(INF,), tau_quantiles=()),
              dict(modes=('mlp',), exec_lens=LENS, taus=(), tau_quantiles=(0.5,)),
              dict(modes=('mlp',), exec_lens=(3,), taus=(0.2, 1.0), tau_quantiles=(0.25, 0.9)))
  return c
