"""Task-suite comparison (issue: evidence where speculation matters): the baseline replans
every step with the trained horizon 3; speculative modes plan with horizon 6 (as in
distillation) so execution lengths 2..6 are possible.

Blocks, most important first (outputs are rewritten after every point, so a run stopped for
time keeps the finished ones): (1) the paper's tau 0.5 at H = 3 for every mode; (2) open-loop
speculation (tau = inf) at execution lengths 3, 6, 2, 4, 5; (3) the MLP corrector at
task-relative taus (the median and 90th percentile of the teacher's mismatch); (4) the MLP
corrector at tau 0.5 and execution lengths 6, 2, 4; (5) a tau sweep at H = 3.
"""
import ml_collections

INF = float('inf')


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 100              # evaluation seeds 100..109: never used in training (seed 1)
  c.episodes = 10
  c.episode_length = 0
  c.task_id = -1            # multitask exports: the task's index (-1: the export's)
  c.blocks = (
      dict(modes=('spec', 'mlp', 'transformer'), exec_lens=(3,), taus=(0.5,), tau_quantiles=()),
      dict(modes=('spec',), exec_lens=(3, 6, 2, 4, 5), taus=(INF,), tau_quantiles=()),
      dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.5, 0.9)),
      dict(modes=('mlp',), exec_lens=(6, 2, 4), taus=(0.5,), tau_quantiles=()),
      dict(modes=('mlp',), exec_lens=(3,), taus=(0.1, 0.2, 1.0), tau_quantiles=()),
  )
  c.base_planner = ml_collections.ConfigDict(dict(horizon=3))  # as trained
  c.spec_planner = ml_collections.ConfigDict(dict(horizon=6))
  return c
