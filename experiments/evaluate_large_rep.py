"""Replication of experiments/evaluate_large.py's best point on further new seeds (130..139),
decided before looking at them: the horizon-6 baseline here; the large-distillation MLP at tau
0.638 in experiments/evaluate_large_rep_b.py (run beside it; merged with
launch/combine_evaluations.py)."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_large.py').get_config()
  c.seed = 130
  c.blocks = ()
  return c
