"""MJX adapter through MuJoCo Playground: a traced backend (reset_one / step_one); batched,
jitted reset/step with auto-reset come from ``envs.batch``."""
from typing import Dict, Optional

import jax

from spec_jax import envs
from spec_jax.envs import batch


def playground_name(task: str) -> str:
  """'humanoid-walk' -> 'HumanoidWalk'; a Playground name is passed through."""
  if '-' not in task:
    return task
  return ''.join(part.capitalize() for part in task.replace('_', '-').split('-'))


BatchState = batch.BatchState   # (kept here for callers of mjx.BatchState)
StepOutput = batch.StepOutput


class MJXEnv:
  """A Playground task with action repeat, a fixed episode length and auto-reset.

  ``impl='jax'`` runs everywhere (use it on CPU and for autodiff); ``impl='warp'`` is GPU only.
  ``model_scale`` optionally scales MJX model fields for distribution shift, e.g.
  ``{'friction': 0.8, 'mass': 1.2}``.
  """

  def __init__(self, task: str = 'humanoid-walk', impl: str = 'jax', action_repeat: int = 2,
               episode_length: int = 500, model_scale: Optional[Dict[str, float]] = None):
    from mujoco_playground import registry
    name = playground_name(task)
    if name not in registry.ALL_ENVS:
      raise ValueError(f'Unknown Playground task {task!r} (as {name!r}); '
                       f'known: {sorted(registry.dm_control_suite.ALL_ENVS)}')
    if impl not in ('jax', 'warp'):
      raise ValueError(f"impl must be 'jax' or 'warp', got {impl!r}")
    if action_repeat < 1 or episode_length < 1:
      raise ValueError('action_repeat and episode_length must be >= 1')
    self._env = registry.load(name, config_overrides={'impl': impl})
    if model_scale:
      self._apply_model_scale(model_scale)
    obs_size = self._env.observation_size
    obs_dim = int(obs_size if isinstance(obs_size, int) else obs_size['state'][0])
    self.spec = envs.EnvSpec(task, obs_dim, int(self._env.action_size), episode_length,
                             action_repeat)

  def _apply_model_scale(self, scale: Dict[str, float]) -> None:
    model = self._env.mjx_model
    # pylint: disable-next=protected-access
    self._env._mjx_model = model.tree_replace(envs.scaled_fields(model, scale))

  @property
  def playground_env(self):
    return self._env

  def reset_one(self, key: jax.Array):
    """Unbatched Playground reset (for vmapped rollouts): key -> State with obs [O]."""
    return self._env.reset(key)

  def step_one(self, env_state, action: jax.Array):
    """Unbatched step with action repeat: (State, action [A]) -> (State, reward summed)."""
    return batch.repeat_step(self._env.step, env_state, action, self.spec.action_repeat)

  def reset(self, key: jax.Array, batch_size: int) -> BatchState:
    """Resets ``batch_size`` environments (``envs.batch.reset``). Returns obs [B, O]."""
    return batch.reset(self, key, batch_size)

  def step(self, state: BatchState, action: jax.Array) -> StepOutput:
    """Steps all environments with actions [B, A] in [-1, 1]; auto-resets finished ones
    (``envs.batch.step``: shapes always checked, the range when ``action`` is concrete)."""
    return batch.step(self, state, action)
