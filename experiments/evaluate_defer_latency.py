"""Decision latency of plan-ahead with deferred rejections on a QUIET machine (nothing else
running): 4 episodes (seeds 100..103) of the baseline (its full plan call is the reference, in
the same run) and deferral with the two cheap rescue planners of experiments/evaluate_defer.py.
Returns on 4 episodes are indicative only (10-episode returns: evaluate_defer.py)."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_defer.py').get_config()
  c.episodes = 4
  return c
