"""Small hand-checkable models and a fake host environment for tests.

``ToyModel``: latent = observation, dynamics z' = z + drift * a (non-trivial, so a wrong
latent-queue index changes the mismatch), reward = -||a - target||^2 with a fixed target or,
with ``track=True``, target = clip(z, -1, 1) (the best action depends on the state), Q = 0.
``FakeEnv``: a host environment (reset/step like DMCEnv) whose observations are a given
sequence, so no simulator is needed where it adds nothing.
"""
import dataclasses
import json
import os
import re
import subprocess
import sys
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from spec_jax import envs


@dataclasses.dataclass(frozen=True)
class ToyCfg:
  obs_dim: int = 3
  action_dim: int = 3
  latent_dim: int = 3
  num_q: int = 2


@dataclasses.dataclass(frozen=True)
class ToyModel:
  """With track=False the optimal plan is a_t = target for every t, with value 0."""
  cfg: ToyCfg = ToyCfg()
  target: tuple = (0.3, -0.6, 0.8)
  drift: float = 0.5
  track: bool = False

  def encode(self, params, obs):
    return obs

  def next(self, params, z, a):
    return z + self.drift * a

  def _target(self, z):
    return jnp.clip(z, -1.0, 1.0) if self.track else jnp.asarray(self.target)

  def reward(self, params, z, a):
    return -jnp.sum(jnp.square(a - self._target(z)), axis=-1)

  def pi(self, params, z, key):
    return jax.random.uniform(key, z.shape[:-1] + (self.cfg.action_dim,), minval=-1, maxval=1), None

  def pi_with_noise(self, params, z, eps):
    return jnp.tanh(eps), None

  def q_pair(self, q_params, z, a, key, reduce='avg'):
    return jnp.zeros(z.shape[:-1])

  def q_pair_idx(self, q_params, z, a, idx, reduce='avg'):
    return jnp.zeros(z.shape[:-1])


TOY_PARAMS = {'Qs': {}}


class FakeEnv:
  """Host environment replaying ``observations`` [T, O] (one episode of T agent steps);
  reward = -||action||^2 so returns depend on the actions."""

  def __init__(self, observations, action_dim: int, obs_fn=None):
    self.observations = np.asarray(observations, np.float32)
    T, O = self.observations.shape
    self.spec = envs.EnvSpec('fake-task', O, action_dim, T, 1)
    self.actions = []
    self._t = 0

  def reset(self, seed: Optional[int] = None):
    self._t, self.actions = 0, []
    return self.observations[0]

  def step(self, action):
    action = np.asarray(action)
    self.actions.append(action)
    self._t += 1
    done = self._t >= self.spec.episode_length
    obs = self.observations[min(self._t, self.spec.episode_length - 1)]
    return obs, -float(np.sum(np.square(action))), done, {}


def nonzero_heads(params, keys=(11, 12)):
  """Sets the zero-initialised reward and Q output kernels of ``params`` (in place) to
  0.1 x N(0, 1) draws of PRNGKey(keys[0]) / PRNGKey(keys[1]); returns params. With zero heads
  every planner sample has the same value and the elites are picked by float rounding, which
  batching or a different compiled program does not preserve."""
  for head, k in zip(('reward', 'Qs'), keys):
    out = params[head]['dense_out']
    out['kernel'] = 0.1 * jax.random.normal(jax.random.PRNGKey(k), out['kernel'].shape)
  return params


def small_agent(obs_dim=5, action_dim=1):
  """A small random TD-MPC2 world model with a non-zero reward head (planning is not flat)."""
  from spec_jax import config, world_model
  wm = world_model.WorldModel(config.model_config(1, obs_dim, action_dim, latent_dim=32,
                                                  mlp_dim=64, enc_dim=64))
  params = wm.init(jax.random.PRNGKey(0))
  params['reward']['dense_out']['kernel'] = 0.2 * jax.random.normal(
      jax.random.PRNGKey(1), params['reward']['dense_out']['kernel'].shape)
  return wm, params


class FakeJaxState(NamedTuple):
  obs: jax.Array   # [O]
  t: jax.Array     # [] int32
  done: jax.Array  # [] float (Playground convention: > 0 once the episode is over)


@dataclasses.dataclass(frozen=True)
class FakeJaxEnv:
  """In-JAX environment with the sweep interface (reset_one / step_one, unbatched):
  obs' = 0.9 obs + 0.1 [a, a, ...], reward = 1 - mean(obs^2). With ``nan_at`` > 0 the physics
  "explodes" at that step: obs becomes NaN and done is set, as Playground does."""
  obs_dim: int = 5
  action_dim: int = 1
  episode_length: int = 12
  nan_at: int = 0

  @property
  def spec(self):
    return envs.EnvSpec('fake-jax', self.obs_dim, self.action_dim, self.episode_length, 1)

  def reset_one(self, key):
    obs = jax.random.uniform(key, (self.obs_dim,), minval=-1.0, maxval=1.0)
    return FakeJaxState(obs=obs, t=jnp.zeros((), jnp.int32), done=jnp.zeros(()))

  def step_one(self, state, action):
    reps = -(-self.obs_dim // self.action_dim)
    push = jnp.tile(action, reps)[:self.obs_dim]
    obs = 0.9 * state.obs + 0.1 * push
    t = state.t + 1
    explode = (self.nan_at > 0) & (t >= self.nan_at)
    obs = jnp.where(explode, jnp.nan, obs)
    reward = jnp.where(explode, jnp.nan, 1.0 - jnp.mean(jnp.square(obs)))
    return FakeJaxState(obs=obs, t=t, done=jnp.maximum(state.done, explode.astype(jnp.float32))), reward


def zero_params(init):
  """Zero parameters of the structure ``init(key)`` builds (eval_shape: nothing is run; fast)."""
  return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype),
                                jax.eval_shape(init, jax.random.PRNGKey(0)))


def constant_correction_params(cor, c):
  """Parameters of the MLP corrector ``cor`` whose correction is the constant delta =
  tanh(bias) = c on every action dimension: every leaf zero except delta_out's bias (the towers
  then output silu(0) = 0, so only that bias gets a gradient)."""
  p = zero_params(cor.init)
  bias = p['GatedHead_0']['delta_out']['bias']
  p['GatedHead_0']['delta_out']['bias'] = jnp.full(bias.shape, np.arctanh(c), jnp.float32)
  return p


def run_device_script(name: str, devices: int) -> dict:
  """Runs tests/scripts/<name> in a subprocess with ``devices`` forced host devices (the test
  session's other XLA flags kept) and returns the JSON its last output line prints; fails
  with the script's stderr if it exits non-zero."""
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'scripts', name)
  flags = re.sub(r'--xla_force_host_platform_device_count=\d+', '',
                 os.environ.get('XLA_FLAGS', ''))
  env = dict(os.environ, XLA_FLAGS=f'{flags} --xla_force_host_platform_device_count={devices}',
             MUJOCO_GL='disable')
  out = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True,
                       timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])
