"""A tiny latent problem with a known optimum, exposing the world-model interface."""
import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class ToyCfg:
  obs_dim: int = 3
  action_dim: int = 3
  latent_dim: int = 3
  num_q: int = 2


@dataclasses.dataclass(frozen=True)
class ToyModel:
  """Latent = observation, static dynamics, reward = -||a - target||^2, Q = 0.

  The optimal plan is a_t = target for every t, with value 0.
  """
  cfg: ToyCfg = ToyCfg()
  # num_q is read by the planner's noise draw.
  target: tuple = (0.3, -0.6, 0.8)

  def encode(self, params, obs):
    return obs

  def next(self, params, z, a):
    return z

  def reward(self, params, z, a):
    return -jnp.sum(jnp.square(a - jnp.asarray(self.target)), axis=-1)

  def pi(self, params, z, key):
    return jax.random.uniform(key, z.shape[:-1] + (self.cfg.action_dim,), minval=-1, maxval=1), None

  def pi_with_noise(self, params, z, eps):
    return jnp.tanh(eps), None

  def q_pair(self, q_params, z, a, key, reduce='avg'):
    return jnp.zeros(z.shape[:-1])

  def q_pair_idx(self, q_params, z, a, idx, reduce='avg'):
    return jnp.zeros(z.shape[:-1])


TOY_PARAMS = {'Qs': {}}


def small_agent(obs_dim=5, action_dim=1):
  """A small random TD-MPC2 world model with a non-zero reward head (planning is not flat)."""
  from spec_jax import config, world_model
  wm = world_model.WorldModel(config.model_config(1, obs_dim, action_dim, latent_dim=32,
                                                  mlp_dim=64, enc_dim=64))
  params = wm.init(jax.random.PRNGKey(0))
  params['reward']['dense_out']['kernel'] = 0.2 * jax.random.normal(
      jax.random.PRNGKey(1), params['reward']['dense_out']['kernel'].shape)
  return wm, params
