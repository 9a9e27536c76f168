"""experiments/evaluate_friction.py without the baseline, for another export's MLP at tau 0.5,
H = 3, under the same friction x0.5 shift, seeds and keys."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_friction.py').get_config()
  c.baseline = False
  c.blocks = (dict(modes=('mlp',), exec_lens=(3,), taus=(0.5,)),)
  return c
