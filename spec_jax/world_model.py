"""TD-MPC2 world model in Flax: encoder, latent dynamics, reward, Q ensemble, policy prior.

Architecture and initialisation follow the official implementation: hidden layers are
Linear -> (Dropout, first Q layer only) -> LayerNorm -> Mish; the encoder and dynamics end
in Linear -> LayerNorm -> SimNorm; weights ~ N(0, 0.02) (the official truncation at +-2 is
100 standard deviations, i.e. none), biases 0; the last layers of the reward head and of
every Q member are zero-initialised. Parameters are a plain dict::

    {'encoder', 'dynamics', 'reward', 'pi': flax params, 'Qs': member params stacked on axis 0,
     'termination': flax params (episodic models only), 'task_emb': [T, D] (multitask only)}

Multitask models (official mt30/mt80) append the task's embedding (rows clamped to norm <= 1,
as torch's nn.Embedding(max_norm=1) does at lookup) to the input of every network: [obs, e],
[z, e, a], [z, e]; the policy masks the action dimensions the task does not have. Every head
then takes ``task`` (int array broadcastable to the batch shape); single-task models ignore it.
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


def _check_matmul_dtype(dtype: Optional[str]) -> None:
  if dtype is not None and dtype not in config_lib.MATMUL_DTYPES:
    raise ValueError(f'matmul_dtype must be None or one of {config_lib.MATMUL_DTYPES}, '
                     f'got {dtype!r}')


def _rounds(dtype: Optional[str]) -> bool:
  """True if ``dtype`` asks for low-precision products (None and 'float32' do not)."""
  return dtype not in (None, 'float32')


def _f32_accumulating_dot(lhs, rhs, dimension_numbers, precision=None, **kwargs):
  """lax.dot_general returning float32 (low-precision operands, float32 accumulation)."""
  return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                             preferred_element_type=jnp.float32, **kwargs)


def matmul(x: jax.Array, w: jax.Array, dtype: Optional[str] = None) -> jax.Array:
  """x @ w, with both operands rounded to ``dtype`` (None / 'float32': exact float32) and the
  products accumulated and returned in float32."""
  if not _rounds(dtype):
    return x @ w
  return _f32_accumulating_dot(x.astype(dtype), w.astype(dtype), (((x.ndim - 1,), (0,)), ((), ())))


class MLP(nn.Module):
  """TD-MPC2 MLP block. Dropout (first layer) is active only when a 'dropout' rng is given.
  ``first_done=True``: ``x`` is already the first layer's pre-activation (x @ W_0 + b_0,
  computed by the caller, e.g. split into a shared and a per-sample share).
  ``matmul_dtype``: None (float32, the official arithmetic) or 'bfloat16': every Dense rounds
  its input, kernel and bias to bfloat16 and accumulates in float32; LayerNorm, Mish, SimNorm
  and the output stay float32. Parameters are float32 either way."""
  hidden: Sequence[int]
  out: int
  simnorm_out: bool = False
  simnorm_dim: int = 8
  dropout: float = 0.0
  zero_out: bool = False
  matmul_dtype: Optional[str] = None

  def _dense(self, width: int, name: str, kernel_init=_weight_init) -> nn.Dense:
    if not _rounds(self.matmul_dtype):
      return nn.Dense(width, kernel_init=kernel_init, name=name)
    return nn.Dense(width, kernel_init=kernel_init, name=name, dtype=jnp.dtype(self.matmul_dtype),
                    dot_general=_f32_accumulating_dot)

  @nn.compact
  def __call__(self, x: jax.Array, first_done: bool = False) -> jax.Array:
    train = self.has_rng('dropout')
    for i, width in enumerate(self.hidden):
      if not (i == 0 and first_done):
        x = self._dense(width, f'dense_{i}')(x)
      if i == 0 and self.dropout > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      x = numerics.mish(nn.LayerNorm(epsilon=_LN_EPS, name=f'ln_{i}')(x))
    kernel_init = nn.initializers.zeros if self.zero_out else _weight_init
    x = self._dense(self.out, 'dense_out', kernel_init)(x)
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
  """Pure-function world model; hashable, so it can be a static jit argument.
  ``matmul_dtype``: None (float32) or 'bfloat16' for the matrix products of every head (see
  ``MLP``; the planner sets it from ``PlannerConfig.matmul_dtype``); parameters stay float32."""
  cfg: config_lib.ModelConfig
  matmul_dtype: Optional[str] = None

  def __post_init__(self):
    _check_matmul_dtype(self.matmul_dtype)
    if self.matmul_dtype == 'float32':   # one spelling of float32, so equal models hash equal
      object.__setattr__(self, 'matmul_dtype', None)

  def with_matmul_dtype(self, dtype: Optional[str]) -> 'WorldModel':
    """This model with its heads' matrix products in ``dtype`` (same parameters)."""
    return dataclasses.replace(self, matmul_dtype=dtype)

  # ---- modules -------------------------------------------------------------------------
  @property
  def encoder_net(self) -> MLP:
    c = self.cfg
    return MLP(hidden=(c.enc_dim,) * max(c.num_enc_layers - 1, 1), out=c.latent_dim,
               simnorm_out=True, simnorm_dim=c.simnorm_dim, matmul_dtype=self.matmul_dtype)

  @property
  def dynamics_net(self) -> MLP:
    c = self.cfg
    return MLP(hidden=(c.mlp_dim,) * 2, out=c.latent_dim, simnorm_out=True,
               simnorm_dim=c.simnorm_dim, matmul_dtype=self.matmul_dtype)

  @property
  def reward_net(self) -> MLP:
    return MLP(hidden=(self.cfg.mlp_dim,) * 2, out=self.cfg.num_bins, zero_out=True,
               matmul_dtype=self.matmul_dtype)

  @property
  def pi_net(self) -> MLP:
    return MLP(hidden=(self.cfg.mlp_dim,) * 2, out=2 * self.cfg.action_dim,
               matmul_dtype=self.matmul_dtype)

  @property
  def termination_net(self) -> MLP:
    return MLP(hidden=(self.cfg.mlp_dim,) * 2, out=1, matmul_dtype=self.matmul_dtype)

  @property
  def q_net(self) -> MLP:
    return MLP(hidden=(self.cfg.mlp_dim,) * 2, out=self.cfg.num_bins,
               dropout=self.cfg.dropout, zero_out=True, matmul_dtype=self.matmul_dtype)

  # ---- init ----------------------------------------------------------------------------
  def init(self, key: jax.Array) -> Params:
    """Initialises all parameters. Returns the parameter dict described in the module doc."""
    c = self.cfg
    enc_key, dyn_key, rew_key, pi_key, q_key, term_key, emb_key = jax.random.split(key, 7)
    obs = jnp.zeros((1, c.obs_dim + c.task_dim))
    za = jnp.zeros((1, c.latent_dim + c.task_dim + c.action_dim))
    z = jnp.zeros((1, c.latent_dim + c.task_dim))
    q_keys = jax.random.split(q_key, c.num_q)
    params = {
        'encoder': self.encoder_net.init(enc_key, obs)['params'],
        'dynamics': self.dynamics_net.init(dyn_key, za)['params'],
        'reward': self.reward_net.init(rew_key, za)['params'],
        'pi': self.pi_net.init(pi_key, z)['params'],
        'Qs': jax.vmap(lambda k: self.q_net.init(k, za)['params'])(q_keys),
    }
    if c.episodic:
      params['termination'] = self.termination_net.init(term_key, z)['params']
    if c.multitask:  # official: uniform(-0.02, 0.02)
      params['task_emb'] = jax.random.uniform(emb_key, (c.num_tasks, c.task_dim), minval=-0.02,
                                              maxval=0.02)
    return params

  # ---- multitask -----------------------------------------------------------------------
  def task_emb(self, params: Params, task) -> Optional[jax.Array]:
    """Task embedding [..., D] of task ids ``task`` [...], rows clamped to norm <= 1
    (torch max_norm: scaled by 1 / (norm + 1e-7) when norm > 1). None for single-task models."""
    if not self.cfg.multitask:
      return None
    if task is None:
      raise ValueError('multitask model: pass the task id (task=...)')
    emb = params['task_emb'][jnp.asarray(task, jnp.int32)]
    norm = jnp.linalg.norm(emb, axis=-1, keepdims=True)
    return jnp.where(norm > 1.0, emb / (norm + 1e-7), emb)

  def _cond(self, params: Params, x: jax.Array, task) -> jax.Array:
    """x [..., F] -> [..., F + D] with the task embedding appended (multitask only)."""
    emb = self.task_emb(params, task)
    return x if emb is None else _append(x, emb)

  def action_mask(self, task) -> Optional[jax.Array]:
    """1 for the action dimensions task ``task`` [...] has, 0 for padding: [..., A]."""
    if not self.cfg.multitask:
      return None
    dims = jnp.asarray(self.cfg.action_dims, jnp.int32)[jnp.asarray(task, jnp.int32)]
    return (jnp.arange(self.cfg.action_dim) < dims[..., None]).astype(jnp.float32)

  def discount(self, task, default: float):
    """Planning discount of ``task`` (multitask with task_discounts), else ``default``."""
    if not (self.cfg.multitask and self.cfg.task_discounts):
      return default
    return jnp.asarray(self.cfg.task_discounts, jnp.float32)[jnp.asarray(task, jnp.int32)]

  # ---- heads ---------------------------------------------------------------------------
  def encode(self, params: Params, obs: jax.Array, task=None) -> jax.Array:
    """Observation [..., O] (multitask: zero-padded to the largest task) -> latent [..., Z]."""
    _check_last(obs, self.cfg.obs_dim, 'encode(obs)')
    return self.encoder_net.apply({'params': params['encoder']}, self._cond(params, obs, task))

  def _z_in(self, z: jax.Array, emb: Optional[jax.Array]) -> jax.Array:
    """[z(, e)]: the latent part of a [z, e, a] head input (checked)."""
    _check_last(z, self.cfg.latent_dim, 'latent z')
    if self.cfg.multitask and emb is None:
      raise ValueError('multitask model: pass the task id (task=...) / its embedding (emb=...)')
    return z if emb is None else _append(z, emb)

  def _za(self, z: jax.Array, a: jax.Array, emb: Optional[jax.Array] = None) -> jax.Array:
    zin = self._z_in(z, emb)
    _check_last(a, self.cfg.action_dim, 'action a')
    return jnp.concatenate([zin, a], axis=-1)

  def next(self, params: Params, z: jax.Array, a: jax.Array, task=None) -> jax.Array:
    """Latent dynamics: z [..., Z], a [..., A] -> z' [..., Z]."""
    za = self._za(z, a, self.task_emb(params, task))
    return self.dynamics_net.apply({'params': params['dynamics']}, za)

  # ---- z0 sharing: the first layer of dynamics/reward split into a latent and an action share
  def latent_share(self, params: Params, head: str, z: jax.Array, task=None) -> jax.Array:
    """The latent's (and task embedding's) share of ``head``'s first layer ('dynamics' or
    'reward'): [z(, e)] @ W_0[:-A] + b_0. z [..., Z] -> [..., mlp_dim]. Computed once for a
    latent that many action samples share (the planner's z0), instead of once per sample."""
    zin = self._z_in(z, self.task_emb(params, task))
    first = params[head]['dense_0']
    bias = first['bias']
    if _rounds(self.matmul_dtype):   # rounded as nn.Dense rounds it
      bias = bias.astype(self.matmul_dtype).astype(jnp.float32)
    return matmul(zin, first['kernel'][:-self.cfg.action_dim], self.matmul_dtype) + bias

  def _from_share(self, params: Params, head: str, net: MLP, share: jax.Array, a: jax.Array):
    _check_last(a, self.cfg.action_dim, 'action a')
    pre = share + matmul(a, params[head]['dense_0']['kernel'][-self.cfg.action_dim:],
                         self.matmul_dtype)
    return net.apply({'params': params[head]}, pre, first_done=True)

  def next_from_share(self, params: Params, share: jax.Array, a: jax.Array) -> jax.Array:
    """``next`` from ``latent_share(params, 'dynamics', z)`` [..., mlp_dim] and a [..., A]."""
    return self._from_share(params, 'dynamics', self.dynamics_net, share, a)

  def reward_from_share(self, params: Params, share: jax.Array, a: jax.Array) -> jax.Array:
    """``reward`` [...] from ``latent_share(params, 'reward', z)`` and a [..., A]."""
    logits = self._from_share(params, 'reward', self.reward_net, share, a)
    return numerics.two_hot_inv(logits, self.cfg.vmin, self.cfg.vmax)

  def reward_logits(self, params: Params, z: jax.Array, a: jax.Array, task=None) -> jax.Array:
    """Reward logits [..., num_bins]."""
    za = self._za(z, a, self.task_emb(params, task))
    return self.reward_net.apply({'params': params['reward']}, za)

  def reward(self, params: Params, z: jax.Array, a: jax.Array, task=None) -> jax.Array:
    """Decoded reward [...]."""
    return numerics.two_hot_inv(self.reward_logits(params, z, a, task), self.cfg.vmin,
                                self.cfg.vmax)

  def termination(self, params: Params, z: jax.Array, task=None) -> jax.Array:
    """Termination probability [...] at z [..., Z] (episodic models only)."""
    if not self.cfg.episodic:
      raise ValueError('termination(): the model is not episodic (ModelConfig.episodic=False)')
    _check_last(z, self.cfg.latent_dim, 'termination(z)')
    logit = self.termination_net.apply({'params': params['termination']},
                                       self._cond(params, z, task))
    return jax.nn.sigmoid(logit[..., 0])

  def pi(self, params: Params, z: jax.Array, key: jax.Array, task=None):
    """Samples the tanh-Gaussian policy prior at z [..., Z]. Returns (action [..., A], info)."""
    eps = jax.random.normal(key, z.shape[:-1] + (self.cfg.action_dim,))
    return self.pi_with_noise(params, z, eps, task)

  def pi_with_noise(self, params: Params, z: jax.Array, eps: jax.Array, task=None):
    """Policy prior at z [..., Z] with given standard-normal noise eps [..., A]."""
    _check_last(z, self.cfg.latent_dim, 'pi(z)')
    pi_out = self.pi_net.apply({'params': params['pi']}, self._cond(params, z, task))
    return self.pi_from_eps(pi_out, eps, task)

  def pi_from_eps(self, pi_out: jax.Array, eps: jax.Array, task=None):
    """Policy head output [..., 2A] + standard-normal noise [..., A] -> (action, info).
    Multitask: mean, log_std and eps are zeroed on the task's padded action dimensions and the
    entropy is scaled by the task's action dimension (as the official code does)."""
    c = self.cfg
    mean, raw_log_std = jnp.split(pi_out, 2, axis=-1)
    ls = numerics.log_std(raw_log_std, c.log_std_min, c.log_std_max - c.log_std_min)
    size = c.action_dim
    if c.multitask:
      mask = self.action_mask(task)
      mean, ls, eps = mean * mask, ls * mask, eps * mask
      size = jnp.sum(mask, axis=-1, keepdims=True)
    log_prob = numerics.gaussian_logprob(eps, ls)
    scaled_log_prob = log_prob * size
    action = mean + eps * jnp.exp(ls)
    mean, action, log_prob = numerics.squash(mean, action, log_prob)
    entropy_scale = scaled_log_prob / (log_prob + 1e-8)
    info = PolicyInfo(mean=mean, log_std=ls, entropy=-log_prob,
                      scaled_entropy=-log_prob * entropy_scale)
    return action, info

  def q_logits(self, q_params: chex.ArrayTree, z: jax.Array, a: jax.Array,
               dropout_key: Optional[jax.Array] = None,
               emb: Optional[jax.Array] = None) -> jax.Array:
    """Logits of every member in ``q_params`` (stacked): [M, ..., num_bins].

    Dropout on the first layer is applied only when ``dropout_key`` is given (training).
    Multitask models need ``emb`` = ``task_emb(params, task)`` [..., D].
    """
    za = self._za(z, a, emb)
    members = jax.tree_util.tree_leaves(q_params)[0].shape[0]
    if dropout_key is None:
      return jax.vmap(lambda p: self.q_net.apply({'params': p}, za))(q_params)
    keys = jax.random.split(dropout_key, members)
    return jax.vmap(lambda p, k: self.q_net.apply({'params': p}, za, rngs={'dropout': k}))(
        q_params, keys)

  def q_pair(self, q_params: chex.ArrayTree, z: jax.Array, a: jax.Array, key: jax.Array,
             reduce: str = 'avg', dropout_key: Optional[jax.Array] = None,
             emb: Optional[jax.Array] = None) -> jax.Array:
    """Decoded Q of two randomly chosen members, reduced by 'avg' or 'min'. Returns [...]."""
    return self.q_pair_idx(q_params, z, a, jax.random.permutation(key, self.cfg.num_q)[:2],
                           reduce, dropout_key, emb)

  def q_pair_idx(self, q_params: chex.ArrayTree, z: jax.Array, a: jax.Array, idx: jax.Array,
                 reduce: str = 'avg', dropout_key: Optional[jax.Array] = None,
                 emb: Optional[jax.Array] = None) -> jax.Array:
    """Decoded Q of members ``idx`` [2], reduced by 'avg' or 'min'. Returns [...]."""
    if reduce not in ('avg', 'min'):
      raise ValueError(f"reduce must be 'avg' or 'min', got {reduce!r}")
    pair = jax.tree_util.tree_map(lambda p: p[idx], q_params)
    q = numerics.two_hot_inv(self.q_logits(pair, z, a, dropout_key, emb), self.cfg.vmin,
                             self.cfg.vmax)
    return jnp.mean(q, axis=0) if reduce == 'avg' else jnp.min(q, axis=0)


def _append(x: jax.Array, emb: jax.Array) -> jax.Array:
  """[..., F] and [..., D] (broadcast to x's batch shape) -> [..., F + D]."""
  emb = jnp.broadcast_to(emb, x.shape[:-1] + emb.shape[-1:])
  return jnp.concatenate([x, emb], axis=-1)


def pad_obs(obs: jax.Array, obs_dim: int) -> jax.Array:
  """Zero-pads observations [..., O_task] to the multitask model's obs_dim (largest task)."""
  if obs.shape[-1] > obs_dim:
    raise ValueError(f'observation has {obs.shape[-1]} > obs_dim {obs_dim} entries')
  return jnp.pad(obs, [(0, 0)] * (obs.ndim - 1) + [(0, obs_dim - obs.shape[-1])])


def num_params(params: chex.ArrayTree) -> int:
  return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
