"""Issue 10's missing walker-run points with the shipped agent (the larger MLP distillation):
execution lengths 2..6 for the MLP corrector at the median-mismatch tau and for open-loop
speculation, on NEW seeds 140..149 (no earlier pass used them; training used seed 1, the
teacher rollouts seed 0). The tau sweep on the same seeds is the second pass,
experiments/evaluate_wr_suite_b.py; merge both with launch/combine_evaluations.py."""
from spec_jax import builders

INF = float('inf')
LENS = (3, 2, 4, 5, 6)


def get_config():
  c = builders.config_module(__file__, 'evaluate_suite_h6.py').get_config()
  c.seed = 140
  c.blocks = (dict(modes=('mlp',), exec_lens=LENS, taus=(), tau_quantiles=(0.5,)),
              dict(modes=('spec',), exec_lens=LENS, taus=(INF,), tau_quantiles=()))
  return c
