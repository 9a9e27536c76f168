"""Numerics shared by the world model, the planner and the losses (TD-MPC2 semantics)."""
import jax
import jax.numpy as jnp

_HALF_LOG_2PI = 0.9189385175704956


def symlog(x: jax.Array) -> jax.Array:
  return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x: jax.Array) -> jax.Array:
  return jnp.sign(x) * jnp.expm1(jnp.abs(x))


def simnorm(x: jax.Array, group: int) -> jax.Array:
  """Simplicial normalisation: softmax over consecutive groups of ``group`` features. [..., Z]."""
  shape = x.shape
  x = x.reshape(*shape[:-1], shape[-1] // group, group)
  return jax.nn.softmax(x, axis=-1).reshape(shape)


_MISH_LINEAR = 20.0  # above this, tanh(softplus(x)) == 1 in float32


def mish(x: jax.Array) -> jax.Array:
  """x * tanh(softplus(x)) with one exp and one division instead of exp, log1p and tanh.

  With u = exp(x): tanh(log(1 + u)) = ((1 + u)^2 - 1) / ((1 + u)^2 + 1) = n / (n + 2), where
  n = u (u + 2). Same values as the textbook form to float32 rounding; on the CPU the planner
  spends about a third of a 1M plan call in Mish's transcendentals, and this form removes most
  of that (BUILD_NOTES, issue 11.5).
  """
  u = jnp.exp(jnp.minimum(x, _MISH_LINEAR))
  n = u * (u + 2.0)
  return jnp.where(x > _MISH_LINEAR, x, x * n / (n + 2.0))


def two_hot(x: jax.Array, num_bins: int, vmin: float, vmax: float) -> jax.Array:
  """Scalars [...] -> soft two-hot targets [..., num_bins] over symlog space."""
  bin_size = (vmax - vmin) / (num_bins - 1)
  x = jnp.clip(symlog(x), vmin, vmax)
  pos = (x - vmin) / bin_size
  idx = jnp.floor(pos)
  offset = pos - idx
  idx = idx.astype(jnp.int32)
  lower = jax.nn.one_hot(idx, num_bins) * (1.0 - offset)[..., None]
  # At x == vmax the upper index wraps to bin 0 with weight 0, as in the official code.
  upper = jax.nn.one_hot((idx + 1) % num_bins, num_bins) * offset[..., None]
  return lower + upper


def two_hot_inv(logits: jax.Array, vmin: float, vmax: float) -> jax.Array:
  """Logits [..., num_bins] -> scalars [...] (softmax expectation in symlog space, symexp)."""
  bins = jnp.linspace(vmin, vmax, logits.shape[-1], dtype=logits.dtype)
  return symexp(jnp.sum(jax.nn.softmax(logits, axis=-1) * bins, axis=-1))


def soft_ce(logits: jax.Array, target: jax.Array, num_bins: int, vmin: float,
            vmax: float) -> jax.Array:
  """Cross-entropy between logits [..., num_bins] and two-hot(target [...]). Returns [...]."""
  target = two_hot(target, num_bins, vmin, vmax)
  return -jnp.sum(target * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def log_std(x: jax.Array, low: float, dif: float) -> jax.Array:
  return low + 0.5 * dif * (jnp.tanh(x) + 1.0)


def gaussian_logprob(eps: jax.Array, log_std_: jax.Array) -> jax.Array:
  """Sum over the last axis of the log-density of eps under N(0, exp(log_std)). Keeps dims."""
  residual = -0.5 * jnp.square(eps) - log_std_
  return jnp.sum(residual - _HALF_LOG_2PI, axis=-1, keepdims=True)


def squash(mu: jax.Array, pi: jax.Array, log_pi: jax.Array):
  """tanh-squashes mean and sample and corrects the log-probability."""
  mu = jnp.tanh(mu)
  pi = jnp.tanh(pi)
  log_pi = log_pi - jnp.sum(jnp.log(jax.nn.relu(1.0 - jnp.square(pi)) + 1e-6), axis=-1, keepdims=True)
  return mu, pi, log_pi
