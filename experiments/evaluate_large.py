"""Issue 10 on walker-run with the larger MLP distillation (experiments/distill_large.py: 24
teacher episodes + 2 DAgger rounds, vs 12 episodes for the shipped MLP), on NEW seeds 120..129
(no earlier pass used them; the agent trained on seed 1, the teacher rollouts used seed 0).
The horizon-6 baseline and the new MLP at tau 0.5, H = 3; the second pass
(experiments/evaluate_large_b.py, run beside it on the other core) has the new MLP at tau
0.638 (the shipped export's median mismatch) and open-loop speculation; the shipped MLP on the
same seeds: experiments/evaluate_large_shipped.py. Merged with launch/combine_evaluations.py."""
from spec_jax import builders

INF = float('inf')
TAUS = (0.5, 0.638)


def get_config():
  c = builders.config_module(__file__, 'evaluate_suite_h6.py').get_config()
  c.seed = 120
  c.blocks = (dict(modes=('mlp',), exec_lens=(3,), taus=TAUS[:1], tau_quantiles=()),)
  return c
