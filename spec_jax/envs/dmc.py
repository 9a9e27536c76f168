"""dm_control adapter (native MuJoCo on CPU)."""
import os
from typing import Any, Dict, Optional, Tuple

os.environ.setdefault('MUJOCO_GL', 'disable')

import numpy as np  # noqa: E402

from spec_jax import envs  # noqa: E402


class DMCEnv:
  """One dm_control task with action repeat and a fixed episode length (TD-MPC2 style).

  ``reset() -> obs [O]``; ``step(action [A]) -> (obs [O], reward, done, info)``; ``done`` is
  True after ``episode_length`` agent steps (DMC tasks have no early termination).
  ``model_scale`` optionally scales physics for distribution shift, as ``MJXEnv`` does:
  ``{'mass': 1.3}`` multiplies every body mass and inertia, ``{'friction': 0.7}`` every geom's
  friction coefficients (applied to the compiled model, so it survives resets).
  """

  def __init__(self, task: str = 'humanoid-walk', seed: int = 0, action_repeat: int = 2,
               episode_length: int = 500, model_scale: Optional[Dict[str, float]] = None):
    from dm_control import suite
    from dm_control.suite.wrappers import action_scale
    domain, name = envs.parse_task(task)
    if (domain, name) not in suite.ALL_TASKS:
      known = sorted(f'{d}-{t}'.replace('_', '-') for d, t in suite.ALL_TASKS)
      raise ValueError(f'Unknown dm_control task {task!r}. Known tasks: {known}')
    if action_repeat < 1 or episode_length < 1:
      raise ValueError('action_repeat and episode_length must be >= 1')
    env = suite.load(domain, name, task_kwargs={'random': seed}, visualize_reward=False)
    self._env = action_scale.Wrapper(env, minimum=-1.0, maximum=1.0)
    obs_dim = int(sum(int(np.prod(v.shape)) for v in env.observation_spec().values()))
    self.spec = envs.EnvSpec(task, obs_dim, int(env.action_spec().shape[0]), episode_length,
                             action_repeat)
    self._t = 0
    self._needs_reset = True
    if model_scale:
      self._apply_model_scale(dict(model_scale))

  def _apply_model_scale(self, scale: Dict[str, float]) -> None:
    model = self._env.physics.model
    for name, value in envs.scaled_fields(model, scale).items():
      getattr(model, name)[:] = value   # in place: the compiled model survives resets

  @property
  def physics(self):
    return self._env.physics

  def _flat(self, observation) -> np.ndarray:
    return np.concatenate([np.asarray(v, dtype=np.float32).ravel()
                           for v in observation.values()])

  def reset(self, seed: Optional[int] = None) -> np.ndarray:
    """Starts an episode; ``seed`` (optional) reseeds the task's initial-state randomness."""
    if seed is not None:
      self._env.task._random = np.random.RandomState(seed)  # pylint: disable=protected-access
    self._t = 0
    self._needs_reset = False
    return self._flat(self._env.reset().observation)

  def step(self, action) -> Tuple[np.ndarray, float, bool, Dict[str, Any]]:
    if self._needs_reset:
      raise RuntimeError('call reset() before step() (episode finished or not started)')
    action = envs.check_action(action, self.spec.action_dim).astype(np.float64)
    reward = 0.0
    for _ in range(self.spec.action_repeat):
      ts = self._env.step(action)
      reward += float(ts.reward or 0.0)
    self._t += 1
    done = self._t >= self.spec.episode_length or ts.last()
    self._needs_reset = done
    return self._flat(ts.observation), reward, done, {'t': self._t}
