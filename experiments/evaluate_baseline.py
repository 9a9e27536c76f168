"""Replan-every-step evaluation only (no speculation, no correctors needed): 10 episodes on
seeds 100..109 with the exported planner, e.g. for an agent without distilled correctors:

  python launch/evaluate.py --config experiments/evaluate_baseline.py --export E --workdir W
"""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_suite.py').get_config()
  c.blocks = ()
  c.base_planner = c.base_planner.copy_and_resolve_references()
  del c.base_planner['horizon']   # the exported (trained) horizon
  return c
