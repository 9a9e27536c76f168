"""Learned acceptance: predict, from the mismatch features of a speculative step, whether the
(corrected) speculative action will be far from the replanning teacher's action.

The executor's ``gate='learned'`` replans when the predicted rejection probability exceeds the
traced threshold (``tau`` of the step, now a probability) instead of when ||z_real - z_hat||
exceeds it (``gate='norm'``, the paper's verifier). Idea from SpecDec++ (a learned acceptance
predictor decides the speculation length), adapted to control.

Features per step, taken from the newest mismatch token [z_real, z_hat, z_real - z_hat, a_spec]:
the latent error z_real - z_hat (Z), the speculative action a_spec (A), the distance d and the
fraction k / H of the queue already executed: F = Z + A + 2 (the absolute latents are left
out: with a few thousand labels they let the head memorise states, see BUILD_NOTES).
Label: reject = ||a_exec - a_teacher||_2 > eps, with a_exec the corrected action (or a_spec
for uncorrected speculation) and eps stored with the head (default: the median error on the
training set, so the classes are balanced).
"""
import dataclasses
import functools
from typing import Dict, NamedTuple, Tuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax


@dataclasses.dataclass(frozen=True)
class AcceptanceHead:
  """Hashable head: ``p_reject(params, token [.., 3Z+A], d [..], k [..]) -> [..]``."""
  latent_dim: int
  action_dim: int
  horizon: int
  hidden: Tuple[int, ...] = (64, 64)

  def __post_init__(self):
    if self.horizon < 1 or not self.hidden or min(self.hidden) < 1:
      raise ValueError(f'acceptance head needs horizon >= 1 and hidden widths >= 1, got '
                       f'{self.horizon}, {self.hidden}')

  @property
  def feature_dim(self) -> int:
    return self.latent_dim + self.action_dim + 2

  @property
  def net(self) -> nn.Module:
    return _Classifier(tuple(self.hidden))

  def init(self, key: jax.Array):
    return self.net.init(key, jnp.zeros((self.feature_dim,)))['params']

  def features(self, token: jax.Array, d: jax.Array, k: jax.Array) -> jax.Array:
    """token [.., 3Z+A], d [..], k [..] -> [.., F]."""
    Z = self.latent_dim
    chex.assert_shape(token, (..., 3 * Z + self.action_dim))
    extra = jnp.stack([jnp.asarray(d, jnp.float32),
                       jnp.asarray(k, jnp.float32) / self.horizon], axis=-1)
    return jnp.concatenate([token[..., 2 * Z:], extra], axis=-1)

  def logit(self, params, token, d, k) -> jax.Array:
    return self.net.apply({'params': params}, self.features(token, d, k))

  def p_reject(self, params, token, d, k) -> jax.Array:
    """Predicted probability that the executed action is rejected (far from the teacher's)."""
    return jax.nn.sigmoid(self.logit(params, token, d, k))


class _Classifier(nn.Module):
  hidden: Tuple[int, ...]

  @nn.compact
  def __call__(self, x):
    x = nn.LayerNorm()(x)
    for width in self.hidden:
      x = nn.silu(nn.Dense(width)(x))
    return nn.Dense(1)(x)[..., 0]


class Labelled(NamedTuple):
  token: jax.Array   # [N, 3Z+A]
  d: jax.Array       # [N]
  k: jax.Array       # [N]
  reject: jax.Array  # [N] float 0/1


def make_labels(err: np.ndarray, eps: float = None) -> Tuple[np.ndarray, float]:
  """reject = err > eps (eps default: the median of ``err``). err [N] -> (labels [N], eps)."""
  err = np.asarray(err, np.float64)
  if err.ndim != 1 or not err.size or not np.all(np.isfinite(err)):
    raise ValueError(f'errors must be a non-empty finite vector, got shape {err.shape}')
  eps = float(np.median(err)) if eps is None else float(eps)
  return (err > eps).astype(np.float32), eps


def _loss(params, head: AcceptanceHead, batch: Labelled):
  logit = head.logit(params, batch.token, batch.d, batch.k)
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logit, batch.reject))


def _opt(lr: float):
  return optax.adamw(lr, weight_decay=1e-3)


@functools.partial(jax.jit, static_argnames=('head', 'steps', 'batch_size', 'lr'))
def _fit(head, params, opt_state, data: Labelled, key, steps: int, batch_size: int, lr: float):
  opt = _opt(lr)

  def body(carry, k):
    p, o = carry
    idx = jax.random.randint(k, (batch_size,), 0, data.d.shape[0])
    loss, grads = jax.value_and_grad(_loss)(p, head, jax.tree_util.tree_map(lambda x: x[idx],
                                                                           data))
    updates, o = opt.update(grads, o, p)
    return (optax.apply_updates(p, updates), o), loss

  (params, opt_state), losses = jax.lax.scan(body, (params, opt_state),
                                             jax.random.split(key, steps))
  return params, opt_state, losses


def scores(head: AcceptanceHead, params, data: Labelled) -> Dict[str, float]:
  """Held-out quality: accuracy at p = 0.5, Brier score, ROC AUC (rank statistic)."""
  p = np.asarray(head.p_reject(params, data.token, data.d, data.k), np.float64)
  y = np.asarray(data.reject) > 0.5
  return dict(accuracy=float(np.mean((p > 0.5) == y)), brier=float(np.mean((p - y) ** 2)),
              auc=roc_auc(p, y), positive_rate=float(np.mean(y)))


def roc_auc(p: np.ndarray, y: np.ndarray) -> float:
  """P(score of a random positive > score of a random negative), ties counted half."""
  pos, neg = p[y], p[~y]
  if not pos.size or not neg.size:
    return float('nan')
  order = np.argsort(np.concatenate([neg, pos]), kind='mergesort')
  ranks = np.empty(order.size)
  allp = np.concatenate([neg, pos])[order]
  # average ranks for ties
  _, inv, counts = np.unique(allp, return_inverse=True, return_counts=True)
  cum = np.cumsum(counts)
  avg = cum - (counts - 1) / 2.0
  ranks[order] = avg[inv]
  return float((ranks[neg.size:].sum() - pos.size * (pos.size + 1) / 2.0) / (pos.size * neg.size))


def _bce(head, params, data: Labelled) -> float:
  return float(_loss(params, head, data))


def train(head: AcceptanceHead, train_set: Labelled, test_set: Labelled, key: jax.Array,
          steps: int = 3000, batch_size: int = 256, lr: float = 1e-3,
          val_set: Labelled = None, chunk: int = 100):
  """Fits the head by binary cross-entropy (AdamW). With ``val_set`` the parameters with the
  lowest validation BCE, checked every ``chunk`` steps, are kept (early stopping; the test set
  is never used to choose). Returns (params, metrics on the test set)."""
  init_key, fit_key = jax.random.split(key)
  params = head.init(init_key)
  opt_state = _opt(lr).init(params)
  best, best_val, best_step, losses = params, float('inf'), 0, []
  for i in range(max(steps // chunk, 1)):
    params, opt_state, loss = _fit(head, params, opt_state, train_set,
                                   jax.random.fold_in(fit_key, i), chunk, batch_size, lr)
    losses.append(float(np.mean(np.asarray(loss))))
    val = _bce(head, params, val_set) if val_set is not None else -float(i)
    if val < best_val:
      best, best_val, best_step = params, val, (i + 1) * chunk
  return best, dict(train_bce=losses[best_step // chunk - 1], best_step=best_step,
                    val_bce=best_val if val_set is not None else float('nan'),
                    test_bce=_bce(head, best, test_set), **scores(head, best, test_set))
