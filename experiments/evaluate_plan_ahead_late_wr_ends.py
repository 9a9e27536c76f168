"""Second pass of experiments/evaluate_plan_ahead_late_wr.py (same seeds 150..159 and keys,
without the baseline) for the late plan-ahead rows, with the queue-end acceptance
(``end_accept``: plans made ahead for a queue end, rescue plans excluded) that the first pass
did not record; returns must reproduce the first pass exactly."""
from spec_jax import builders


def get_config():
  late = builders.config_module(__file__, 'evaluate_plan_ahead_late.py')
  c = builders.config_module(__file__, 'evaluate_plan_ahead_late_wr.py').get_config()
  c.baseline = False
  c.blocks = late.late_blocks(0.5, (None,))[1:]
  return c
