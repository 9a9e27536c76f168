"""A HOST loop (``reset(seed)`` / ``step(action)``, numpy in/out) over any TRACED backend, so
an agent trained on MJX or Brax is evaluated, distilled and compared on its own simulator by
the host-loop jobs (``envs.make(..., need=HOST)`` wraps a traced-only backend in this)."""
import functools
from typing import Any, Dict, Optional, Tuple

import jax
import numpy as np

from spec_jax import envs


@functools.partial(jax.jit, static_argnums=0)
def _reset(env, key):
  return env.reset_one(key)


@functools.partial(jax.jit, static_argnums=0)
def _step(env, state, action):
  return env.step_one(state, action)


class HostAdapter:
  """One environment of a traced backend driven from the host.

  ``reset(seed)`` draws the initial state from ``PRNGKey(seed)`` (the same seed gives the same
  episode start; None continues a counter that starts at the adapter's ``seed``). The episode
  ends after ``spec.episode_length`` agent steps or when the backend sets ``done``; a
  non-finite observation or reward (exploded physics) also ends it, with reward 0 for that
  step (as the sweeps count it) and ``info['nonfinite'] = True``.
  Reset/step are jitted with the traced env as a static argument: build one adapter per
  simulator configuration and reuse it (a new env instance compiles again).
  """

  def __init__(self, traced_env: Any, seed: int = 0):
    self.traced = traced_env
    self.spec = traced_env.spec
    self._state, self._t, self._next_seed = None, 0, int(seed)

  def reset(self, seed: Optional[int] = None) -> np.ndarray:
    """Returns obs [O]."""
    seed = self._next_seed if seed is None else int(seed)
    self._next_seed = seed + 1
    self._state, self._t = _reset(self.traced, jax.random.PRNGKey(seed)), 0
    return np.asarray(self._state.obs)

  def step(self, action: np.ndarray) -> Tuple[np.ndarray, float, bool, Dict[str, Any]]:
    """action [A] in [-1, 1] -> (obs [O], reward, done, info)."""
    if self._state is None:
      raise RuntimeError('step() before reset()')
    a = envs.check_action(action, self.spec.action_dim)
    self._state, reward = _step(self.traced, self._state, a.astype(np.float32))
    self._t += 1
    obs, reward = np.asarray(self._state.obs), float(reward)
    finite = bool(np.all(np.isfinite(obs))) and np.isfinite(reward)
    done = (self._t >= self.spec.episode_length or float(self._state.done) > 0 or not finite)
    return obs, reward if finite else 0.0, done, {'nonfinite': not finite}
