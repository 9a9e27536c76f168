"""The README's main job: baseline / speculation / corrected speculation on a shipped agent in
a few minutes on 2 CPU cores: 3 paired episodes of 250 agent steps per mode (the >= 10 full
episodes of evidence are experiments/evaluate_suite*.py). The baseline replans every step
with the same horizon-6 planner the speculative modes (and the correctors' teacher) use."""
import ml_collections

INF = float('inf')


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 100
  c.episodes = 3
  c.episode_length = 250
  c.task_id = -1            # multitask exports: the task's index (-1: the export's)
  c.blocks = (dict(modes=('spec',), exec_lens=(3,), taus=(INF,), tau_quantiles=()),
              dict(modes=('spec', 'mlp', 'transformer'), exec_lens=(3,), taus=(0.5,),
                   tau_quantiles=()))
  c.base_planner = ml_collections.ConfigDict(dict(horizon=6))
  c.spec_planner = ml_collections.ConfigDict(dict(horizon=6))
  return c
