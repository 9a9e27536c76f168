"""MJX adapter through MuJoCo Playground: batched, jitted reset/step with auto-reset."""
import functools
from typing import Any, Dict, NamedTuple, Optional

import chex
import flax
import jax
import jax.numpy as jnp

from spec_jax import envs


def playground_name(task: str) -> str:
  """'humanoid-walk' -> 'HumanoidWalk'; a Playground name is passed through."""
  if '-' not in task:
    return task
  return ''.join(part.capitalize() for part in task.replace('_', '-').split('-'))


@flax.struct.dataclass
class BatchState:
  env_state: Any           # Playground State, batched over [B]
  obs: jax.Array           # [B, O] current observation (after auto-reset)
  t: jax.Array             # [B] agent steps taken in the current episode
  episode_return: jax.Array  # [B] return of the current episode so far
  key: jax.Array           # [B, 2] per-env reset keys


class StepOutput(NamedTuple):
  state: BatchState
  obs: jax.Array         # [B, O] next observation (reset obs where done)
  reward: jax.Array      # [B] reward summed over the action repeat
  done: jax.Array        # [B] bool: episode ended at this step (time limit or NaN physics)
  final_obs: jax.Array   # [B, O] observation reached by this step (before auto-reset)
  final_return: jax.Array  # [B] episode return (valid where done)


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
    unknown = set(scale) - {'friction', 'mass'}
    if unknown:
      raise ValueError(f'model_scale supports friction and mass, got {sorted(unknown)}')
    model = self._env.mjx_model
    updates = {}
    if 'friction' in scale:
      updates['geom_friction'] = model.geom_friction * scale['friction']
    if 'mass' in scale:
      updates['body_mass'] = model.body_mass * scale['mass']
      updates['body_inertia'] = model.body_inertia * scale['mass']
    self._env._mjx_model = model.tree_replace(updates)  # pylint: disable=protected-access

  @property
  def playground_env(self):
    return self._env

  def reset_one(self, key: jax.Array):
    """Unbatched Playground reset (for vmapped rollouts): key -> State with obs [O]."""
    return self._env.reset(key)

  def step_one(self, env_state, action: jax.Array):
    """Unbatched step with action repeat: (State, action [A]) -> (State, reward summed)."""
    return self._single_step(env_state, action)

  @functools.partial(jax.jit, static_argnums=(0, 2))
  def reset(self, key: jax.Array, batch_size: int) -> BatchState:
    """Resets ``batch_size`` environments. Returns a BatchState with obs [B, O]."""
    keys = jax.random.split(key, batch_size)
    reset_keys, next_keys = jnp.split(jax.vmap(jax.random.split)(keys), 2, axis=1)
    env_state = jax.vmap(self._env.reset)(reset_keys[:, 0])
    zeros = jnp.zeros((batch_size,))
    return BatchState(env_state=env_state, obs=env_state.obs, t=zeros.astype(jnp.int32),
                      episode_return=zeros, key=next_keys[:, 0])

  def _single_step(self, env_state, action):
    def body(carry, _):
      s, r = carry
      s = self._env.step(s, action)
      return (s, r + s.reward), None
    (env_state, reward), _ = jax.lax.scan(body, (env_state, jnp.zeros(())), None,
                                          length=self.spec.action_repeat)
    return env_state, reward

  def step(self, state: BatchState, action: jax.Array) -> StepOutput:
    """Steps all environments with actions [B, A] in [-1, 1]; auto-resets finished ones.

    Shapes are always checked; the range is checked when ``action`` is concrete (not traced).
    """
    chex.assert_shape(action, (state.obs.shape[0], self.spec.action_dim))
    if not isinstance(action, jax.core.Tracer):
      envs.check_action(action, self.spec.action_dim, (state.obs.shape[0],))
    return self._step(state, action)

  @functools.partial(jax.jit, static_argnums=0)
  def _step(self, state: BatchState, action: jax.Array) -> StepOutput:
    env_state, reward = jax.vmap(self._single_step)(state.env_state, action)
    t = state.t + 1
    ep_return = state.episode_return + reward
    done = (t >= self.spec.episode_length) | (env_state.done > 0)
    split = jax.vmap(jax.random.split)(state.key)
    fresh = jax.vmap(self._env.reset)(split[:, 0])
    select = lambda new, old: jnp.where(done.reshape(done.shape + (1,) * (new.ndim - 1)), new, old)
    next_env_state = jax.tree_util.tree_map(select, fresh, env_state)
    new_state = BatchState(env_state=next_env_state, obs=next_env_state.obs,
                           t=jnp.where(done, 0, t), episode_return=jnp.where(done, 0.0, ep_return),
                           key=split[:, 1])
    return StepOutput(new_state, next_env_state.obs, reward, done, env_state.obs, ep_return)
