"""Online adaptation under a shift distillation never saw (issue 12.4): walker-run with every
body mass x1.5 (dm_control model_scale; the correctors were distilled on nominal physics).
Baseline (horizon-6 planner, replan every step), the MLP corrector at tau 0.5 and H = 3 as
distilled, and the same with online adaptation (spec_jax/online.py: teacher labels from its
own replans, carried across the 10 episodes in seed order). Seeds 100..109."""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'evaluate_suite_h6.py')
  c = base.get_config()
  c.model_scale = dict(mass=1.5)
  c.blocks = (
      dict(modes=('mlp',), exec_lens=(3,), taus=(0.5,), online=True),
      dict(modes=('mlp',), exec_lens=(3,), taus=(0.5,)),
  )
  return c
