"""Issue 12.1 on cartpole, one run with all three executors the issue names: replanning every
step (the baseline), the paper's speculation (MLP, E = 3, tau = the median mismatch, a blocking
fresh plan on each rejection) and the no-wait executor (E = 3, late plan-ahead lead 1, deferred
rejections), paced at the emulated 100 ms period of experiments/evaluate_plan_ahead_cartpole_100ms.py.

Declared in session 19 before it ran (this docstring is committed first): the shipped agent
(agents/cartpole-mjx), FRESH seeds 420..429, the code with only the step on the decision path
(session 19), quiet machine, default XLA flags, ONE run, reported whatever it gives. It
completes the 100 ms runs (baseline and the no-wait executors only) with the paper's executor
in the same run, and is a third seed set for the no-wait executor's p99.

  python launch/evaluate.py --config experiments/evaluate_plan_ahead_cartpole_100ms_paper.py \\
      --export agents/cartpole-mjx --workdir runs/cp100_paper
"""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_plan_ahead_cartpole.py').get_config()
  c.seed = 420
  c.period_ms = 100.0
  paper, lead1_defer, _, _ = c.blocks
  c.blocks = (paper, lead1_defer)
  return c
