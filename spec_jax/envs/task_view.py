"""A host environment seen through a multitask model's shapes (official mt30 / mt80 models).

A multitask TD-MPC2 model takes observations zero-padded to the largest task's dimension and
emits actions of the largest action dimension, masked to the task's (the official trainer pads
and slices the same way). ``TaskView`` pads each observation of a ``HOST`` environment to the
model's ``obs_dim`` and sends the first ``env.spec.action_dim`` action entries to the
environment, so the host loops (evaluation, distillation) run a multitask export unchanged
apart from passing the task id to the executor. ``TracedTaskView`` does the same for a
``TRACED`` environment (sweeps).
"""
import dataclasses
from typing import Any, Dict, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from spec_jax import envs


def _check_fits(spec: envs.EnvSpec, obs_dim: int, action_dim: int) -> None:
  if spec.obs_dim > obs_dim or spec.action_dim > action_dim:
    raise ValueError(f'task {spec.task!r} (obs {spec.obs_dim}, action {spec.action_dim}) does not '
                     f'fit the model (obs {obs_dim}, action {action_dim}): wrong task set or id?')


class TaskView:
  """``env`` (HOST) padded to ``obs_dim`` observations and ``action_dim`` actions.

  Args:
    env: a HOST environment with spec.obs_dim <= obs_dim, spec.action_dim <= action_dim.
    obs_dim, action_dim: the model's (largest task's) dimensions.
  """

  def __init__(self, env, obs_dim: int, action_dim: int):
    s = env.spec
    _check_fits(s, obs_dim, action_dim)
    self.env = env
    self.spec = envs.EnvSpec(s.task, obs_dim, action_dim, s.episode_length, s.action_repeat)

  def _pad(self, obs: np.ndarray) -> np.ndarray:
    obs = np.asarray(obs, np.float32)
    return np.concatenate([obs, np.zeros(self.spec.obs_dim - obs.shape[-1], np.float32)])

  def reset(self, seed: Optional[int] = None) -> np.ndarray:
    """Starts an episode. Returns obs [obs_dim] (zero-padded)."""
    return self._pad(self.env.reset(seed=seed))

  def step(self, action: np.ndarray) -> Tuple[np.ndarray, float, bool, Dict[str, Any]]:
    """action [action_dim] -> the environment gets action[:its action_dim]."""
    action = np.asarray(action)
    if action.shape != (self.spec.action_dim,):
      raise ValueError(f'TaskView.step: action must be [{self.spec.action_dim}], got '
                       f'{tuple(action.shape)}')
    obs, reward, done, info = self.env.step(action[:self.env.spec.action_dim])
    return self._pad(obs), reward, done, info


def task_of(model, extra: Dict[str, Any], task_id: Optional[int] = -1) -> Optional[int]:
  """The task id a host loop passes to the executor: None for a single-task model; for a
  multitask one ``task_id`` when >= 0, else the one the export records (``extra['task_id']``,
  written by the converter for a ``--task`` of a known task set). ValueError when neither
  names it or it is out of range."""
  if not getattr(model.cfg, 'multitask', False):
    return None
  task = task_id if task_id is not None and task_id >= 0 else extra.get('task_id')
  if task is None:
    raise ValueError(f"multitask export ({extra.get('task_set', 'unknown task set')}, "
                     f'{model.cfg.num_tasks} tasks): set --config.task_id (the index of '
                     f"{extra.get('task')!r} in the task set) or convert with --task")
  if not 0 <= int(task) < model.cfg.num_tasks:
    raise ValueError(f'task_id {task} out of range for {model.cfg.num_tasks} tasks')
  return int(task)


class ViewState(NamedTuple):
  """A traced environment's state seen through the model's shapes."""
  inner: Any          # the wrapped environment's state
  obs: jax.Array      # [obs_dim] zero-padded observation
  done: jax.Array     # [] the wrapped state's done


@dataclasses.dataclass(frozen=True)
class TracedTaskView:
  """``env`` (TRACED, hashable) padded to ``obs_dim`` observations and ``action_dim`` actions:
  reset_one / step_one wrap its state in a ``ViewState``; hashable (a static jit argument)."""
  env: Any
  obs_dim: int
  action_dim: int

  def __post_init__(self):
    _check_fits(self.env.spec, self.obs_dim, self.action_dim)

  @property
  def spec(self) -> envs.EnvSpec:
    s = self.env.spec
    return envs.EnvSpec(s.task, self.obs_dim, self.action_dim, s.episode_length, s.action_repeat)

  def _view(self, state) -> ViewState:
    pad = self.obs_dim - state.obs.shape[-1]
    return ViewState(state, jnp.pad(state.obs, (0, pad)), state.done)

  def reset_one(self, key: jax.Array) -> ViewState:
    """key [2] -> ViewState (obs [obs_dim])."""
    return self._view(self.env.reset_one(key))

  def step_one(self, state: ViewState, action: jax.Array):
    """action [action_dim] -> (ViewState, reward []); the env gets action[:its action_dim]."""
    inner, reward = self.env.step_one(state.inner, action[:self.env.spec.action_dim])
    return self._view(inner), reward


def view(model, env, traced: bool = False):
  """``env`` as the model sees it: unchanged for a single-task model; for a multitask one
  padded to its shapes (``TracedTaskView`` for a TRACED environment, else ``TaskView``)."""
  if not getattr(model.cfg, 'multitask', False):
    return env
  cls = TracedTaskView if traced else TaskView
  return cls(env, model.cfg.obs_dim, model.cfg.action_dim)


def for_model(model, env, extra: Dict[str, Any], task_id: Optional[int] = -1,
              traced: bool = False):
  """(``view(model, env, traced)``, ``task_of(model, extra, task_id)``): what a loop needs to
  run ``model`` on ``env``: (env, None) for a single-task model."""
  return view(model, env, traced), task_of(model, extra, task_id)
