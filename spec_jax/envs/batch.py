"""Batched, jitted reset/step with auto-reset for any traced backend (``reset_one(key)`` /
``step_one(state, action)``, see ``spec_jax.envs``): what the trainer's many-environment
loop runs, so a new traced backend trains without code of its own."""
import functools
from typing import Any, NamedTuple

import chex
import flax
import jax
import jax.numpy as jnp

from spec_jax import envs


@flax.struct.dataclass
class BatchState:
  env_state: Any           # backend state, batched over [B] (has .obs [B, O], .done [B])
  obs: jax.Array           # [B, O] current observation (after auto-reset)
  t: jax.Array             # [B] agent steps taken in the current episode
  episode_return: jax.Array  # [B] return of the current episode so far
  key: jax.Array           # [B, 2] per-env reset keys


class StepOutput(NamedTuple):
  state: BatchState
  obs: jax.Array         # [B, O] next observation (reset obs where done)
  reward: jax.Array      # [B] reward summed over the action repeat
  done: jax.Array        # [B] bool: episode ended at this step (time limit or backend done)
  final_obs: jax.Array   # [B, O] observation reached by this step (before auto-reset)
  final_return: jax.Array  # [B] episode return (valid where done)


def repeat_step(step_fn, state, action: jax.Array, repeat: int):
  """A traced backend's ``step_one`` body: ``repeat`` simulator steps with the same action
  (call inside jit). step_fn(state, action) -> state with ``.reward`` [].
  Returns (state, reward summed over the repeats [])."""
  def body(carry, _):
    s, r = carry
    s = step_fn(s, action)
    return (s, r + s.reward), None
  (state, reward), _ = jax.lax.scan(body, (state, jnp.zeros(())), None, length=repeat)
  return state, reward


@functools.partial(jax.jit, static_argnums=(0, 2))
def reset(env, key: jax.Array, batch_size: int) -> BatchState:
  """Resets ``batch_size`` copies of the traced ``env``.

  Args:
    env: a traced backend (hashable; ``reset_one``, ``spec``).
    key: PRNG key [2].
    batch_size: B.
  Returns:
    BatchState with obs [B, O], t and episode_return zero, fresh per-env keys [B, 2].
  """
  keys = jax.random.split(key, batch_size)
  reset_keys, next_keys = jnp.split(jax.vmap(jax.random.split)(keys), 2, axis=1)
  env_state = jax.vmap(env.reset_one)(reset_keys[:, 0])
  zeros = jnp.zeros((batch_size,))
  return BatchState(env_state=env_state, obs=env_state.obs, t=zeros.astype(jnp.int32),
                    episode_return=zeros, key=next_keys[:, 0])


def step_traced(env, state: BatchState, action: jax.Array) -> StepOutput:
  """One vector step (call inside jit): actions [B, A] -> StepOutput; an environment whose
  episode ends (``spec.episode_length`` agent steps or the backend's done) is reset with its
  own key and its ``obs`` is the reset observation (``final_obs`` keeps the last one)."""
  env_state, reward = jax.vmap(env.step_one)(state.env_state, action)
  t = state.t + 1
  ep_return = state.episode_return + reward
  done = (t >= env.spec.episode_length) | (env_state.done > 0)
  split = jax.vmap(jax.random.split)(state.key)
  fresh = jax.vmap(env.reset_one)(split[:, 0])
  select = lambda new, old: jnp.where(done.reshape(done.shape + (1,) * (new.ndim - 1)), new, old)
  next_env_state = jax.tree_util.tree_map(select, fresh, env_state)
  new_state = BatchState(env_state=next_env_state, obs=next_env_state.obs,
                         t=jnp.where(done, 0, t), episode_return=jnp.where(done, 0.0, ep_return),
                         key=split[:, 1])
  return StepOutput(new_state, next_env_state.obs, reward, done, env_state.obs, ep_return)


_step_jit = jax.jit(step_traced, static_argnums=0)


def step(env, state: BatchState, action: jax.Array) -> StepOutput:
  """``step_traced`` under jit, with the action checked: shape [B, A] always, finite and in
  [-1, 1] when ``action`` is concrete (not traced).

  Args:
    env: a traced backend.
    state: BatchState over B environments.
    action: [B, A] in [-1, 1].
  Returns:
    StepOutput (leaves [B] or [B, O]).
  """
  chex.assert_shape(action, (state.obs.shape[0], env.spec.action_dim))
  if not isinstance(action, jax.core.Tracer):
    envs.check_action(action, env.spec.action_dim, (state.obs.shape[0],))
  return _step_jit(env, state, action)
