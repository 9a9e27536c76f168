"""Robust corrector distillation (issue 12.3): teacher episodes with physics randomised per
episode (every body mass and geom friction scaled by U(0.7, 1.3)), 12 episodes as the shipped
nominal MLP, then two DAgger rounds per corrector (3 episodes each executing the CORRECTED
action, relabelled by the replanning teacher; the corrector is retrained on the union). Evaluate under shifts outside these ranges
(experiments/evaluate_online.py's mass x1.5) to test whether the degradation disappears."""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'distill_suite.py')
  c = base.get_config()
  c.kinds = ('mlp',)
  c.randomize = dict(mass=(0.7, 1.3), friction=(0.7, 1.3))
  c.dagger_rounds = 2
  c.dagger_episodes = 3
  return c
