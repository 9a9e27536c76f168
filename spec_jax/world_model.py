"""TD-MPC2 world model in Flax: encoder, latent dynamics, reward, Q ensemble, policy prior.

Architecture and initialisation follow the official implementation: hidden layers are
Linear -> (Dropout, first Q layer only) -> LayerNorm -> Mish; the encoder and dynamics end
in Linear -> LayerNorm -> SimNorm; weights ~ N(0, 0.02) (the official truncation at +-2 is
100 standard deviations, i.e. none), biases 0; the last layers of the reward head and of
every Q member are zero-initialised. Parameters are a plain dict::

    {'encoder', 'dynamics', 'reward', 'pi': flax params, 'Qs': member params stacked on axis 0}
"""
import dataclasses
from typing import Dict, NamedTuple, Optional, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from spec_jax import config as config_lib
from spec_jax import numerics

Params = Dict[str, chex.ArrayTree]
_weight_init = nn.initializers.normal(stddev=0.02)
_LN_EPS = 1e-5  # torch.nn.LayerNorm default


class MLP(nn.Module):
  """TD-MPC2 MLP block. Dropout (first layer) is active only when a 'dropout' rng is given."""
  hidden: Sequence[int]
  out: int
  simnorm_out: bool = False
  simnorm_dim: int = 8
  dropout: float = 0.0
  zero_out: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    train = self.has_rng('dropout')
    for i, width in enumerate(self.hidden):
      x = nn.Dense(width, kernel_init=_weight_init, name=f'dense_{i}')(x)
      if i == 0 and self.dropout > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      x = numerics.mish(nn.LayerNorm(epsilon=_LN_EPS, name=f'ln_{i}')(x))
    kernel_init = nn.initializers.zeros if self.zero_out else _weight_init
    x = nn.Dense(self.out, kernel_init=kernel_init, name='dense_out')(x)
    if self.simnorm_out:
      x = numerics.simnorm(nn.LayerNorm(epsilon=_LN_EPS, name='ln_out')(x), self.simnorm_dim)
    return x


class PolicyInfo(NamedTuple):
  mean: jax.Array            # [..., A] tanh-squashed mean
  log_std: jax.Array         # [..., A]
  entropy: jax.Array         # [..., 1] -log_prob of the squashed sample
  scaled_entropy: jax.Array  # [..., 1] entropy rescaled by the action dimension


def _check_last(x: jax.Array, size: int, what: str) -> None:
  if x.ndim == 0 or x.shape[-1] != size:
    raise ValueError(f'{what}: expected last dimension {size}, got shape {tuple(x.shape)}')


@dataclasses.dataclass(frozen=True)
class WorldModel:
  """Pure-function world model; hashable, so it can be a static jit argument."""
  cfg: config_lib.ModelConfig

  # ---- modules -------------------------------------------------------------------------
  @property
  def encoder_net(self) -> MLP:
    c = self.cfg
    return MLP(hidden=(c.enc_dim,) * max(c.num_enc_layers - 1, 1), out=c.latent_dim,
               simnorm_out=True, simnorm_dim=c.simnorm_dim)

  @property
  def dynamics_net(self) -> MLP:
    c = self.cfg
    return MLP(hidden=(c.mlp_dim,) * 2, out=c.latent_dim, simnorm_out=True,
               simnorm_dim=c.simnorm_dim)

  @property
  def reward_net(self) -> MLP:
    return MLP(hidden=(self.cfg.mlp_dim,) * 2, out=self.cfg.num_bins, zero_out=True)

  @property
  def pi_net(self) -> MLP:
    return MLP(hidden=(self.cfg.mlp_dim,) * 2, out=2 * self.cfg.action_dim)

  @property
  def q_net(self) -> MLP:
    return MLP(hidden=(self.cfg.mlp_dim,) * 2, out=self.cfg.num_bins,
               dropout=self.cfg.dropout, zero_out=True)

  # ---- init ----------------------------------------------------------------------------
  def init(self, key: jax.Array) -> Params:
    """Initialises all parameters. Returns the parameter dict described in the module doc."""
    c = self.cfg
    enc_key, dyn_key, rew_key, pi_key, q_key = jax.random.split(key, 5)
    obs = jnp.zeros((1, c.obs_dim))
    za = jnp.zeros((1, c.latent_dim + c.action_dim))
    z = jnp.zeros((1, c.latent_dim))
    q_keys = jax.random.split(q_key, c.num_q)
    return {
        'encoder': self.encoder_net.init(enc_key, obs)['params'],
        'dynamics': self.dynamics_net.init(dyn_key, za)['params'],
        'reward': self.reward_net.init(rew_key, za)['params'],
        'pi': self.pi_net.init(pi_key, z)['params'],
        'Qs': jax.vmap(lambda k: self.q_net.init(k, za)['params'])(q_keys),
    }

  # ---- heads ---------------------------------------------------------------------------
  def encode(self, params: Params, obs: jax.Array) -> jax.Array:
    """Observation [..., O] -> latent [..., Z] (SimNorm'd)."""
    _check_last(obs, self.cfg.obs_dim, 'encode(obs)')
    return self.encoder_net.apply({'params': params['encoder']}, obs)

  def _za(self, z: jax.Array, a: jax.Array) -> jax.Array:
    _check_last(z, self.cfg.latent_dim, 'latent z')
    _check_last(a, self.cfg.action_dim, 'action a')
    return jnp.concatenate([z, a], axis=-1)

  def next(self, params: Params, z: jax.Array, a: jax.Array) -> jax.Array:
    """Latent dynamics: z [..., Z], a [..., A] -> z' [..., Z]."""
    return self.dynamics_net.apply({'params': params['dynamics']}, self._za(z, a))

  def reward_logits(self, params: Params, z: jax.Array, a: jax.Array) -> jax.Array:
    """Reward logits [..., num_bins]."""
    return self.reward_net.apply({'params': params['reward']}, self._za(z, a))

  def reward(self, params: Params, z: jax.Array, a: jax.Array) -> jax.Array:
    """Decoded reward [...]."""
    return numerics.two_hot_inv(self.reward_logits(params, z, a), self.cfg.vmin, self.cfg.vmax)

  def pi(self, params: Params, z: jax.Array, key: jax.Array):
    """Samples the tanh-Gaussian policy prior at z [..., Z]. Returns (action [..., A], info)."""
    eps = jax.random.normal(key, z.shape[:-1] + (self.cfg.action_dim,))
    return self.pi_with_noise(params, z, eps)

  def pi_with_noise(self, params: Params, z: jax.Array, eps: jax.Array):
    """Policy prior at z [..., Z] with given standard-normal noise eps [..., A]."""
    _check_last(z, self.cfg.latent_dim, 'pi(z)')
    return self.pi_from_eps(self.pi_net.apply({'params': params['pi']}, z), eps)

  def pi_from_eps(self, pi_out: jax.Array, eps: jax.Array):
    """Policy head output [..., 2A] + standard-normal noise [..., A] -> (action, info)."""
    c = self.cfg
    mean, raw_log_std = jnp.split(pi_out, 2, axis=-1)
    ls = numerics.log_std(raw_log_std, c.log_std_min, c.log_std_max - c.log_std_min)
    log_prob = numerics.gaussian_logprob(eps, ls)
    scaled_log_prob = log_prob * c.action_dim
    action = mean + eps * jnp.exp(ls)
    mean, action, log_prob = numerics.squash(mean, action, log_prob)
    entropy_scale = scaled_log_prob / (log_prob + 1e-8)
    info = PolicyInfo(mean=mean, log_std=ls, entropy=-log_prob,
                      scaled_entropy=-log_prob * entropy_scale)
    return action, info

  def q_logits(self, q_params: chex.ArrayTree, z: jax.Array, a: jax.Array,
               dropout_key: Optional[jax.Array] = None) -> jax.Array:
    """Logits of every member in ``q_params`` (stacked): [M, ..., num_bins].

    Dropout on the first layer is applied only when ``dropout_key`` is given (training).
    """
    za = self._za(z, a)
    members = jax.tree_util.tree_leaves(q_params)[0].shape[0]
    if dropout_key is None:
      return jax.vmap(lambda p: self.q_net.apply({'params': p}, za))(q_params)
    keys = jax.random.split(dropout_key, members)
    return jax.vmap(lambda p, k: self.q_net.apply({'params': p}, za, rngs={'dropout': k}))(
        q_params, keys)

  def q_pair(self, q_params: chex.ArrayTree, z: jax.Array, a: jax.Array, key: jax.Array,
             reduce: str = 'avg', dropout_key: Optional[jax.Array] = None) -> jax.Array:
    """Decoded Q of two randomly chosen members, reduced by 'avg' or 'min'. Returns [...]."""
    return self.q_pair_idx(q_params, z, a, jax.random.permutation(key, self.cfg.num_q)[:2],
                           reduce, dropout_key)

  def q_pair_idx(self, q_params: chex.ArrayTree, z: jax.Array, a: jax.Array, idx: jax.Array,
                 reduce: str = 'avg', dropout_key: Optional[jax.Array] = None) -> jax.Array:
    """Decoded Q of members ``idx`` [2], reduced by 'avg' or 'min'. Returns [...]."""
    if reduce not in ('avg', 'min'):
      raise ValueError(f"reduce must be 'avg' or 'min', got {reduce!r}")
    pair = jax.tree_util.tree_map(lambda p: p[idx], q_params)
    q = numerics.two_hot_inv(self.q_logits(pair, z, a, dropout_key), self.cfg.vmin, self.cfg.vmax)
    return jnp.mean(q, axis=0) if reduce == 'avg' else jnp.min(q, axis=0)


def num_params(params: chex.ArrayTree) -> int:
  return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
