"""Brax adapter: a traced backend (reset_one / step_one) over ``brax.envs`` (registered as
'brax' in ``spec_jax.envs``; batched reset/step come from ``envs.batch``)."""
from typing import Dict, Optional

import jax

from spec_jax import envs
from spec_jax.envs import batch

PIPELINES = ('generalized', 'positional', 'spring', 'mjx')


def brax_name(task: str) -> str:
  """'inverted-pendulum' -> 'inverted_pendulum'; a Brax name is passed through."""
  return task.replace('-', '_')


class BraxEnv:
  """A Brax environment with action repeat and a fixed episode length (the sweep and the
  trainer end an episode after ``episode_length`` agent steps or when Brax sets ``done``).

  ``impl`` is the Brax physics pipeline ('generalized' by default). ``model_scale``
  (``{'mass': x, 'friction': y}``) scales body masses and inertias / geom frictions of the
  system, as ``MJXEnv`` does.
  """

  def __init__(self, task: str = 'inverted-pendulum', impl: str = 'generalized',
               action_repeat: int = 2, episode_length: int = 500,
               model_scale: Optional[Dict[str, float]] = None):
    from brax import envs as brax_envs  # imported only when this backend is used
    name = brax_name(task)
    known = sorted(brax_envs._envs)  # pylint: disable=protected-access
    if name not in known:
      raise ValueError(f'Unknown Brax task {task!r} (as {name!r}); known: {known}')
    if impl not in PIPELINES:
      raise ValueError(f'impl must be one of {PIPELINES} for Brax, got {impl!r}')
    if action_repeat < 1 or episode_length < 1:
      raise ValueError('action_repeat and episode_length must be >= 1')
    self._env = brax_envs.get_environment(name, backend=impl)
    if model_scale:
      self._apply_model_scale(dict(model_scale))
    self.spec = envs.EnvSpec(task, int(self._env.observation_size), int(self._env.action_size),
                             episode_length, action_repeat)

  def _apply_model_scale(self, scale: Dict[str, float]) -> None:
    self._env.sys = self._env.sys.tree_replace(envs.scaled_fields(self._env.sys, scale))

  @property
  def brax_env(self):
    return self._env

  def reset_one(self, key: jax.Array):
    """Unbatched Brax reset: key [2] -> brax State (obs [O], done [])."""
    return self._env.reset(key)

  def step_one(self, state, action: jax.Array):
    """Unbatched step with action repeat: (State, action [A]) -> (State, reward summed [])."""
    return batch.repeat_step(self._env.step, state, action, self.spec.action_repeat)
