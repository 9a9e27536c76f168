"""Fifth evaluation pass of the cheetah-run suite: the MLP corrector at execution lengths 2, 4
and 6 with the paper's tau 0.5, on the same seeds (100..109) and keys as
experiments/evaluate_suite_h6_h5.py, without a baseline: pair it with that pass's baseline
(same code) through launch/combine_evaluations.py."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_suite_h6_h5.py').get_config()
  c.baseline = False
  c.blocks = (dict(modes=('mlp',), exec_lens=(2, 4, 6), taus=(0.5,), tau_quantiles=()),)
  return c
