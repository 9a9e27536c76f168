"""Learned correctors: residual actions from the mismatch between real and predicted latents.

Both correctors end in the same gated head (REFERENCE.md, paper method):
    u = MLP(h), g = sigmoid(MLP(h)), fused = g * u + (1 - g) * h_a, delta_a = tanh(Linear(fused))
where h_a is the action-tower embedding of the speculative action and h is the joint embedding.
The last Linear is zero-initialised so an untrained corrector outputs delta_a = 0 (speculation
without correction); this is our choice, the paper does not state its initialisation.

Inputs: ``history`` [K, F] mismatch features [z_real, z_hat, z_real - z_hat, a_spec]
(F = 3Z + A; the newest token last), ``valid`` [K] bool (False for padding), ``a_spec`` [A].
"""
import dataclasses
from typing import Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class CorrectorConfig:
  kind: str = 'mlp'          # a key of REGISTRY: 'mlp' (gated two-tower), 'transformer' (temporal)
  hidden: int = 256          # tower / head width (paper: 256-512)
  history: int = 4           # K mismatch tokens kept (used by the transformer)
  d_model: int = 128
  num_heads: int = 4
  ff_dim: int = 256
  num_layers: int = 2

  def __post_init__(self):
    if self.kind not in REGISTRY:
      raise ValueError(f'unknown corrector kind {self.kind!r}; known: {kinds()}')
    if self.history < 1 or self.hidden < 1:
      raise ValueError('history and hidden must be >= 1')
    if self.d_model % self.num_heads:
      raise ValueError(f'd_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})')


class SiluMLP(nn.Module):
  widths: Sequence[int]

  @nn.compact
  def __call__(self, x):
    for w in self.widths:
      x = nn.silu(nn.Dense(w)(x))
    return x


class GatedHead(nn.Module):
  """fused = g*u + (1-g)*h_a, delta = tanh(Linear(fused)) with a zero-initialised Linear."""
  hidden: int
  action_dim: int

  @nn.compact
  def __call__(self, h, h_a):
    u = SiluMLP((self.hidden,))(h)
    g = nn.sigmoid(nn.Dense(self.hidden)(SiluMLP((self.hidden,))(h)))
    fused = g * u + (1.0 - g) * h_a
    return jnp.tanh(nn.Dense(self.action_dim, kernel_init=nn.initializers.zeros,
                             name='delta_out')(fused))


def split_feature(feature, latent_dim: int):
  z_real = feature[..., :latent_dim]
  z_hat = feature[..., latent_dim:2 * latent_dim]
  return z_real, z_hat, feature[..., 3 * latent_dim:]


class TwoTowerCorrector(nn.Module):
  """Gated two-tower MLP on the newest mismatch token."""
  cfg: CorrectorConfig
  latent_dim: int
  action_dim: int

  @nn.compact
  def __call__(self, history, valid, a_spec):
    z_real, z_hat, _ = split_feature(history[..., -1, :], self.latent_dim)
    state_in = jnp.concatenate([z_real, z_hat, z_real - z_hat], axis=-1)
    h_s = SiluMLP((self.cfg.hidden, self.cfg.hidden), name='state_tower')(state_in)
    h_a = SiluMLP((self.cfg.hidden, self.cfg.hidden), name='action_tower')(a_spec)
    h = jnp.concatenate([h_s, h_a], axis=-1)
    return GatedHead(self.cfg.hidden, self.action_dim)(h, h_a)


class EncoderBlock(nn.Module):
  d_model: int
  num_heads: int
  ff_dim: int

  @nn.compact
  def __call__(self, x, mask):
    attn = nn.MultiHeadDotProductAttention(num_heads=self.num_heads)(x, x, mask=mask)
    x = nn.LayerNorm()(x + attn)
    ff = nn.Dense(self.d_model)(nn.gelu(nn.Dense(self.ff_dim)(x)))
    return nn.LayerNorm()(x + ff)


class TemporalCorrector(nn.Module):
  """Transformer over the last K mismatch tokens; the newest token is the context."""
  cfg: CorrectorConfig
  latent_dim: int
  action_dim: int

  @nn.compact
  def __call__(self, history, valid, a_spec):
    K = history.shape[-2]
    x = nn.Dense(self.cfg.d_model, name='embed')(history)
    pos = self.param('pos', nn.initializers.normal(0.02), (K, self.cfg.d_model))
    x = x + pos
    mask = nn.make_attention_mask(valid, valid)  # [..., 1, K, K]
    for i in range(self.cfg.num_layers):
      x = EncoderBlock(self.cfg.d_model, self.cfg.num_heads, self.cfg.ff_dim, name=f'block_{i}')(
          x, mask)
    context = x[..., -1, :]
    h_a = SiluMLP((self.cfg.hidden, self.cfg.hidden), name='action_tower')(a_spec)
    h = jnp.concatenate([context, h_a], axis=-1)
    return GatedHead(self.cfg.hidden, self.action_dim)(h, h_a)


@dataclasses.dataclass(frozen=True)
class Corrector:
  """Hashable wrapper: ``apply(params, history [K, F], valid [K], a_spec [A]) -> delta [A]``."""
  cfg: CorrectorConfig
  latent_dim: int
  action_dim: int

  @property
  def feature_dim(self) -> int:
    return 3 * self.latent_dim + self.action_dim

  @property
  def net(self) -> nn.Module:
    return REGISTRY[self.cfg.kind](self.cfg, self.latent_dim, self.action_dim)

  def init(self, key: jax.Array):
    K, F = self.cfg.history, self.feature_dim
    return self.net.init(key, jnp.zeros((K, F)), jnp.ones((K,), bool),
                         jnp.zeros((self.action_dim,)))['params']

  def apply(self, params, history, valid, a_spec) -> jax.Array:
    chex.assert_shape(history, (..., self.cfg.history, self.feature_dim))
    chex.assert_shape(a_spec, (..., self.action_dim))
    return self.net.apply({'params': params}, history, valid, a_spec)

  def correct(self, params, history, valid, a_spec) -> jax.Array:
    """Corrected action clip(a_spec + delta, -1, 1)."""
    return jnp.clip(a_spec + self.apply(params, history, valid, a_spec), -1.0, 1.0)


# --- registry -----------------------------------------------------------------------------
# kind -> flax module class built as cls(cfg, latent_dim, action_dim) and called as
# net(history [K, F], valid [K], a_spec [A]) -> delta [A]. Each kind is also an executor mode
# (speculation.modes()) and a valid entry of the distillation config's ``kinds``.
REGISTRY = {'mlp': TwoTowerCorrector, 'transformer': TemporalCorrector}


def register(kind: str, cls) -> None:
  """Adds a corrector architecture under ``kind`` (one line per new architecture)."""
  if kind in REGISTRY or kind in ('baseline', 'spec'):
    raise ValueError(f'corrector kind {kind!r} is already taken')
  REGISTRY[kind] = cls


def kinds() -> tuple:
  """The registered corrector kinds, e.g. ('mlp', 'transformer')."""
  return tuple(REGISTRY)


def needs_corrector(mode: str) -> bool:
  """True for executor modes that apply a learned corrector."""
  return mode in REGISTRY
