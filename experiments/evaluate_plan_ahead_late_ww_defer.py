"""Second pass on walker-walk's seeds 100..109 (pairs with experiments/evaluate_plan_ahead_late.py,
no baseline): late plan-ahead with lead 2 and lead 1 and deferred rejections whose rescue plans
use the FULL planner (session 8 ran only the cheap 1 x 64 rescue planner on walker-walk, which
cost return). MLP corrector, tau = q0.90, H = 3, not paced."""
from spec_jax import builders


def get_config():
  late = builders.config_module(__file__, 'evaluate_plan_ahead_late.py')
  c = late.get_config()
  c.baseline = False
  c.blocks = late.late_blocks(0.9, (None,))[3:]
  return c
