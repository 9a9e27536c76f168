"""Issue 10 on walker-run with the larger MLP distillation (experiments/distill_large.py: 30
teacher episodes + 2 DAgger rounds, vs 12 episodes for the shipped MLP), on NEW seeds 120..129
(no earlier pass used them; the agent trained on seed 1, the teacher rollouts used seed 0).
One run: the horizon-6 baseline, open-loop speculation, the new MLP at the two absolute taus of
the earlier walker-run passes (0.5 and 0.638 = the shipped export's median mismatch), H = 3.
The shipped MLP on the same seeds: experiments/evaluate_large_shipped.py (baseline=False),
merged with launch/combine_evaluations.py."""
from spec_jax import builders

INF = float('inf')
TAUS = (0.5, 0.638)


def get_config():
  c = builders.config_module(__file__, 'evaluate_suite_h6.py').get_config()
  c.seed = 120
  c.blocks = (
      dict(modes=('mlp',), exec_lens=(3,), taus=TAUS, tau_quantiles=()),
      dict(modes=('spec',), exec_lens=(3,), taus=(INF,), tau_quantiles=()),
  )
  return c
