"""Acceptance heads for an already distilled agent (issue 12, learned acceptance): keep the
export's correctors (kinds = ()), collect 6 FRESH teacher episodes (seed 2: neither the
training seed 1 nor the distillation seed 0), label each speculative step by whether the
executed (corrected) action lands within the median distance of the teacher's, train one head
per mode ('spec', 'mlp', 'transformer'); the mismatch distribution of the correctors is kept."""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'distill_suite.py')
  c = base.get_config()
  c.seed = 2
  c.episodes = 6
  c.kinds = ()
  c.acceptance = True
  c.acceptance_steps = 3000
  return c
