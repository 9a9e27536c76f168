"""Online adaptation of the corrector during deployment (issue 12.4, after Online Speculative
Decoding: the drafter is updated on the traffic it serves).

Every replan after the first step of an episode is a free teacher label: the executor had a
speculative action a_spec queued for that step (info.a_spec) and the planner, run from the real
observation, produced the teacher's action. The mismatch history at that step (state.history,
state.history_valid after the step) is the corrector's input. Labels go into a bounded FIFO
buffer; every ``update_every`` new labels the corrector takes ``steps`` Adam steps (small
learning rate) on minibatches from the buffer with the distillation loss plus an L2 anchor to
the distilled parameters (so a few labels cannot drag it far). Everything is jitted; the host
loop only pushes labels and calls ``maybe_update``.
"""
import dataclasses
import functools
from typing import Any

import chex
import flax
import jax
import jax.numpy as jnp
import optax

from spec_jax import correctors as corr_lib


@dataclasses.dataclass(frozen=True)
class OnlineConfig:
  """Static settings of online adaptation."""
  capacity: int = 512       # labels kept (FIFO)
  update_every: int = 16    # new labels between updates
  steps: int = 8            # Adam steps per update
  batch_size: int = 64
  lr: float = 1e-4
  lam: float = 0.1          # residual regulariser, as in distillation
  anchor: float = 1e-3      # L2 weight towards the distilled parameters

  def __post_init__(self):
    if min(self.capacity, self.update_every, self.steps, self.batch_size) < 1:
      raise ValueError(f'capacity, update_every, steps and batch_size must be >= 1: {self}')
    if not self.lr > 0 or self.lam < 0 or self.anchor < 0:
      raise ValueError(f'need lr > 0, lam >= 0, anchor >= 0: {self}')


@flax.struct.dataclass
class OnlineState:
  history: jax.Array    # [N, K, F]
  valid: jax.Array      # [N, K] bool
  a_spec: jax.Array     # [N, A]
  a_teacher: jax.Array  # [N, A]
  count: jax.Array      # [] int32 labels pushed so far (the buffer holds min(count, N))
  since: jax.Array      # [] int32 labels since the last update
  params: Any           # corrector parameters being adapted
  anchor: Any           # the distilled parameters
  opt_state: Any
  updates: jax.Array    # [] int32 updates done


def init(cfg: OnlineConfig, corrector: corr_lib.Corrector, params) -> OnlineState:
  K, F, A = corrector.cfg.history, corrector.feature_dim, corrector.action_dim
  N = cfg.capacity
  zero = jnp.zeros((), jnp.int32)
  return OnlineState(jnp.zeros((N, K, F)), jnp.zeros((N, K), bool), jnp.zeros((N, A)),
                     jnp.zeros((N, A)), zero, zero, params, params,
                     optax.adam(cfg.lr).init(params), zero)


@jax.jit
def push(state: OnlineState, history, valid, a_spec, a_teacher) -> OnlineState:
  """Adds one label: history [K, F], valid [K], a_spec [A], a_teacher [A]."""
  i = state.count % state.a_spec.shape[0]
  return state.replace(history=state.history.at[i].set(history),
                       valid=state.valid.at[i].set(valid), a_spec=state.a_spec.at[i].set(a_spec),
                       a_teacher=state.a_teacher.at[i].set(a_teacher), count=state.count + 1,
                       since=state.since + 1)


def _loss(params, anchor, corrector, cfg, history, valid, a_spec, a_teacher, weight):
  a = corrector.correct(params, history, valid, a_spec)
  per = jnp.mean(jnp.square(a - a_teacher), -1) + cfg.lam * jnp.mean(jnp.square(a - a_spec), -1)
  fit = jnp.sum(weight * per) / jnp.maximum(jnp.sum(weight), 1.0)
  dist = sum(jnp.sum(jnp.square(p - q)) for p, q in zip(jax.tree_util.tree_leaves(params),
                                                       jax.tree_util.tree_leaves(anchor)))
  return fit + cfg.anchor * dist


@functools.partial(jax.jit, static_argnames=('cfg', 'corrector'))
def update(cfg: OnlineConfig, corrector: corr_lib.Corrector, state: OnlineState,
           key: jax.Array) -> OnlineState:
  """``cfg.steps`` Adam steps on minibatches drawn uniformly from the filled part of the buffer."""
  chex.assert_rank(state.a_spec, 2)
  filled = jnp.minimum(state.count, state.a_spec.shape[0])
  opt = optax.adam(cfg.lr)

  def body(carry, k):
    params, opt_state = carry
    idx = jax.random.randint(k, (cfg.batch_size,), 0, jnp.maximum(filled, 1))
    grads = jax.grad(_loss)(params, state.anchor, corrector, cfg, state.history[idx],
                            state.valid[idx], state.a_spec[idx], state.a_teacher[idx],
                            (filled > 0).astype(jnp.float32) * jnp.ones((cfg.batch_size,)))
    upd, opt_state = opt.update(grads, opt_state, params)
    return (optax.apply_updates(params, upd), opt_state), None

  (params, opt_state), _ = jax.lax.scan(body, (state.params, state.opt_state),
                                        jax.random.split(key, cfg.steps))
  return state.replace(params=params, opt_state=opt_state, since=jnp.zeros((), jnp.int32),
                       updates=state.updates + 1)


def maybe_update(cfg: OnlineConfig, corrector: corr_lib.Corrector, state: OnlineState,
                 key: jax.Array) -> OnlineState:
  """Host-side trigger: updates once ``cfg.update_every`` labels arrived since the last one."""
  if int(state.since) >= cfg.update_every:
    return update(cfg, corrector, state, key)
  return state
