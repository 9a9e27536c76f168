"""The README's main job: baseline / speculation / corrected speculation on a shipped agent in
a few minutes on 2 CPU cores (3 episodes each, same seeds; the full >= 10-episode evidence
is experiments/evaluate_suite.py)."""
import ml_collections

INF = float('inf')


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 100
  c.episodes = 3
  c.episode_length = 0
  c.blocks = (dict(modes=('spec',), exec_lens=(3,), taus=(INF,), tau_quantiles=()),
              dict(modes=('spec', 'mlp', 'transformer'), exec_lens=(3,), taus=(0.5,),
                   tau_quantiles=()))
  c.base_planner = ml_collections.ConfigDict(dict(horizon=3))  # as trained
  c.spec_planner = ml_collections.ConfigDict(dict(horizon=6))
  return c
