"""Environments behind one small interface.

* ``dmc.DMCEnv``: native MuJoCo via dm_control (CPU, one environment, numpy in/out); the
  paper's humanoid-walk with action repeat 2 and 500 agent steps.
* ``mjx.MJXEnv``: MuJoCo Playground (MJX) environments, batched reset/step under jit with
  auto-reset, impl 'jax' (CPU/GPU) or 'warp' (GPU).

Both expose ``spec`` (an ``EnvSpec``) with the same observation/action sizes for a task.
"""
from typing import NamedTuple

import numpy as np


class EnvSpec(NamedTuple):
  task: str
  obs_dim: int
  action_dim: int
  episode_length: int   # agent steps per episode
  action_repeat: int


def check_action(action, action_dim: int, batch_shape=()) -> np.ndarray:
  """Validates an action array: shape batch_shape + (action_dim,), finite, within [-1, 1]."""
  a = np.asarray(action)
  expected = tuple(batch_shape) + (action_dim,)
  if a.shape != expected:
    raise ValueError(f'action must have shape {expected}, got {a.shape}')
  if not np.all(np.isfinite(a)):
    raise ValueError('action contains NaN or inf')
  if np.any(np.abs(a) > 1.0 + 1e-6):
    raise ValueError(f'action outside [-1, 1]: min {a.min():.4f}, max {a.max():.4f}')
  return a


def parse_task(task: str):
  """'humanoid-walk' -> ('humanoid', 'walk'); 'cup-catch' -> ('ball_in_cup', 'catch')."""
  if not isinstance(task, str) or '-' not in task:
    raise ValueError(f"task must look like 'domain-task' (e.g. 'humanoid-walk'), got {task!r}")
  domain, name = task.replace('-', '_').split('_', 1)
  domain = dict(cup='ball_in_cup', pointmass='point_mass').get(domain, domain)
  return domain, name
