"""Mode comparison on the CPU cartpole agent (launch/evaluate.py)."""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 100              # evaluation episode seeds start here (unseen in training)
  c.episodes = 10
  c.episode_length = 0      # 0: the export's
  c.task_id = -1            # multitask exports: the task's index (-1: the export's)
  # Each block: modes x exec_lens x (taus + tau_quantiles); the baseline runs once, first.
  # tau_quantiles are resolved on the mismatch distribution stored by launch/distill.py.
  c.blocks = (dict(modes=('spec', 'mlp', 'transformer'), exec_lens=(3,), taus=(0.5,),
                   tau_quantiles=()),)
  c.base_planner = ml_collections.ConfigDict()  # overrides of the exported planner (baseline)
  c.spec_planner = ml_collections.ConfigDict()  # ... for the speculative modes (e.g. horizon)
  return c
