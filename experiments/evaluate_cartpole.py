"""Mode comparison on the CPU cartpole agent (launch/evaluate.py)."""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 100              # evaluation episode seeds start here (unseen in training)
  c.episodes = 10
  c.modes = 'baseline,spec,mlp,transformer'
  c.tau = '0.5'             # one value or a comma list, e.g. '0.02,0.05,0.1,0.5' (paper: 0.5)
  c.exec_len = 3            # paper's H = 3
  return c
