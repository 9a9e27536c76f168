"""Speculate-verify-correct: one jitted step, a single lax.cond between replan and correct.

Per environment step (``step``):
  1. z_real = enc(obs); z_hat = latent_queue[index]; d = ||z_real - z_hat||_2.
  2. The mismatch token [z_real, z_hat, z_real - z_hat, a_spec] is pushed on the history.
  3. replan = t0 | (index >= exec_len) | (d > tau)  -> lax.cond:
     replan : MPPI from obs, refill the action queue [H, A] and latent queue [H+1, Z],
              execute the first action, index = 1 (counts one planner call; a fallback if it
              was caused by d > tau with actions still queued).
     correct: a = clip(a_spec + corrector(history, a_spec), -1, 1), index += 1.

Modes (static): 'baseline' (exec_len forced to 1: replan every step), 'spec' (no correction),
'mlp' and 'transformer' (learned correctors). ``tau`` is traced: vmap it for sweeps.
Note: under vmap a lax.cond with a batched predicate runs both branches (select), so
``step_batch`` plans at every step; ``step_batch_shared`` keeps one batch-level cond instead.
Per-step latency gains are measured unbatched (``launch/evaluate.py``).
"""
import dataclasses
import functools
from typing import NamedTuple, Optional

import chex
import flax
import jax
import jax.numpy as jnp

from spec_jax import config as config_lib
from spec_jax import correctors as corr_lib
from spec_jax import planner as planner_lib
from spec_jax import world_model as wm_lib

MODES = ('baseline', 'spec', 'mlp', 'transformer')


@dataclasses.dataclass(frozen=True)
class SpecConfig:
  """Static speculation settings. exec_len <= planner horizon actions run per plan."""
  mode: str = 'mlp'
  exec_len: int = 3
  history: int = 4
  eval_mode: bool = True

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}')
    if self.exec_len < 1 or self.history < 1:
      raise ValueError('exec_len and history must be >= 1')

  @property
  def effective_exec_len(self) -> int:
    return 1 if self.mode == 'baseline' else self.exec_len


@flax.struct.dataclass
class SpecState:
  action_queue: jax.Array   # [H, A]
  latent_queue: jax.Array   # [H+1, Z]
  index: jax.Array          # [] int32: queued actions already executed
  history: jax.Array        # [K, F] mismatch tokens, newest last
  history_valid: jax.Array  # [K] bool
  planner: planner_lib.PlannerState
  planner_calls: jax.Array  # [] int32
  corrections: jax.Array    # [] int32
  fallbacks: jax.Array      # [] int32: replans forced by d > tau
  steps: jax.Array          # [] int32


class StepInfo(NamedTuple):
  replanned: jax.Array   # [] bool
  fallback: jax.Array    # [] bool
  d: jax.Array           # [] mismatch distance (0 at t0)
  z_real: jax.Array      # [Z]
  z_hat: jax.Array       # [Z]
  a_spec: jax.Array      # [A] queued action at this step (before correction)
  k: jax.Array           # [] int32: steps into speculation (index before the step)


def init_state(model: wm_lib.WorldModel, planner_cfg: config_lib.PlannerConfig,
               spec_cfg: SpecConfig) -> SpecState:
  H, A, Z = planner_cfg.horizon, model.cfg.action_dim, model.cfg.latent_dim
  if spec_cfg.exec_len > H:
    raise ValueError(f'exec_len ({spec_cfg.exec_len}) cannot exceed the planner horizon ({H})')
  zero = jnp.zeros((), jnp.int32)
  return SpecState(action_queue=jnp.zeros((H, A)), latent_queue=jnp.zeros((H + 1, Z)),
                   index=jnp.full((), H, jnp.int32),
                   history=jnp.zeros((spec_cfg.history, 3 * Z + A)),
                   history_valid=jnp.zeros((spec_cfg.history,), bool),
                   planner=planner_lib.init_state(planner_cfg, A), planner_calls=zero,
                   corrections=zero, fallbacks=zero, steps=zero)


def _push(history, valid, token, reset):
  history = jnp.concatenate([history[1:], token[None]], axis=0)
  valid = jnp.concatenate([valid[1:], jnp.ones((1,), bool)], axis=0)
  valid = jnp.where(reset, jnp.zeros_like(valid).at[-1].set(True), valid)
  return history, valid


class _Verdict(NamedTuple):
  z_real: jax.Array
  z_hat: jax.Array
  d: jax.Array
  a_spec: jax.Array
  history: jax.Array
  valid: jax.Array
  replan: jax.Array
  fallback: jax.Array


def _verify(model, params, planner_cfg, spec_cfg, state, obs, tau, t0) -> _Verdict:
  """Encode, measure the mismatch, push the history token, decide replan vs correct."""
  H = planner_cfg.horizon
  z_real = model.encode(params, obs)
  idx = jnp.minimum(state.index, H)
  z_hat = state.latent_queue[idx]
  d = jnp.where(t0, 0.0, jnp.linalg.norm(z_real - z_hat))
  a_spec = state.action_queue[jnp.minimum(idx, H - 1)]
  token = jnp.concatenate([z_real, z_hat, z_real - z_hat, a_spec])
  history, valid = _push(state.history, state.history_valid, token, t0)
  exhausted = state.index >= spec_cfg.effective_exec_len
  return _Verdict(z_real, z_hat, d, a_spec, history, valid, replan=t0 | exhausted | (d > tau),
                  fallback=(d > tau) & ~exhausted & ~t0)


def _replan_branch(model, params, planner_cfg, spec_cfg, state, obs, key, t0):
  res, pstate = planner_lib.plan(model, params, planner_cfg, state.planner, obs, key, t0,
                                 spec_cfg.eval_mode)
  return res.action, res.actions, res.latents, jnp.ones((), jnp.int32), pstate


def _correct_branch(spec_cfg, corrector, corrector_params, state, v: _Verdict):
  if spec_cfg.mode in ('baseline', 'spec'):
    a = v.a_spec
  else:
    a = jnp.clip(v.a_spec + corrector.apply(corrector_params, v.history, v.valid, v.a_spec),
                 -1.0, 1.0)
  return a, state.action_queue, state.latent_queue, state.index + 1, state.planner


def _finish(state, v: _Verdict, out):
  action, aq, lq, index, pstate = out
  new_state = state.replace(
      action_queue=aq, latent_queue=lq, index=index, history=v.history, history_valid=v.valid,
      planner=pstate, planner_calls=state.planner_calls + v.replan.astype(jnp.int32),
      corrections=state.corrections + (~v.replan).astype(jnp.int32),
      fallbacks=state.fallbacks + v.fallback.astype(jnp.int32), steps=state.steps + 1)
  info = StepInfo(replanned=v.replan, fallback=v.fallback, d=v.d, z_real=v.z_real,
                  z_hat=v.z_hat, a_spec=v.a_spec, k=state.index)
  return action, new_state, info


def _check(spec_cfg, corrector):
  if spec_cfg.mode in ('mlp', 'transformer') and corrector is None:
    raise ValueError(f"mode {spec_cfg.mode!r} needs a corrector")


@functools.partial(jax.jit, static_argnames=('model', 'planner_cfg', 'spec_cfg', 'corrector'))
def step(model: wm_lib.WorldModel, params, planner_cfg: config_lib.PlannerConfig,
         spec_cfg: SpecConfig, corrector: Optional[corr_lib.Corrector], corrector_params,
         state: SpecState, obs: jax.Array, key: jax.Array, tau, t0):
  """One speculative step for one environment: obs [O] -> (action [A], SpecState, StepInfo).

  ``key`` is used as the planner key when replanning; ``tau`` and ``t0`` may be traced.
  """
  chex.assert_rank(obs, 1)
  _check(spec_cfg, corrector)
  t0 = jnp.asarray(t0, bool)
  v = _verify(model, params, planner_cfg, spec_cfg, state, obs, jnp.asarray(tau, jnp.float32), t0)
  out = jax.lax.cond(
      v.replan,
      lambda: _replan_branch(model, params, planner_cfg, spec_cfg, state, obs, key, t0),
      lambda: _correct_branch(spec_cfg, corrector, corrector_params, state, v))
  return _finish(state, v, out)


@functools.partial(jax.jit, static_argnames=('model', 'planner_cfg', 'spec_cfg', 'corrector'))
def step_batch_shared(model: wm_lib.WorldModel, params, planner_cfg: config_lib.PlannerConfig,
                      spec_cfg: SpecConfig, corrector: Optional[corr_lib.Corrector],
                      corrector_params, state: SpecState, obs: jax.Array, keys: jax.Array,
                      tau, t0):
  """Batched step for B environments with ONE lax.cond over the batch: the (vmapped) planner
  runs only when at least one environment must replan, and its result is kept only for those.

  ``vmap(step)`` turns the per-env cond into a select that plans at every step; this variant
  skips planning on the steps where every environment corrects, which is what makes large
  vectorised sweeps cheap. state [B, ...], obs [B, O], keys [B, 2], tau [] or [B], t0 [B].
  Same results as ``step`` per environment (up to batched float rounding).
  """
  chex.assert_rank(obs, 2)
  _check(spec_cfg, corrector)
  B = obs.shape[0]
  tau = jnp.broadcast_to(jnp.asarray(tau, jnp.float32), (B,))
  t0 = jnp.broadcast_to(jnp.asarray(t0, bool), (B,))
  v = jax.vmap(lambda s, o, tt, t: _verify(model, params, planner_cfg, spec_cfg, s, o, tt, t))(
      state, obs, tau, t0)
  corrected = jax.vmap(lambda s, vv: _correct_branch(spec_cfg, corrector, corrector_params, s,
                                                     vv))(state, v)

  def with_plan():
    planned = jax.vmap(lambda s, o, k, t: _replan_branch(model, params, planner_cfg, spec_cfg, s,
                                                         o, k, t))(state, obs, keys, t0)
    pick = lambda p, c: jnp.where(v.replan.reshape((B,) + (1,) * (p.ndim - 1)), p, c)
    return jax.tree_util.tree_map(pick, planned, corrected)

  out = jax.lax.cond(jnp.any(v.replan), with_plan, lambda: corrected)
  return jax.vmap(_finish)(state, v, out)


def step_batch(model, params, planner_cfg, spec_cfg, corrector, corrector_params, state, obs,
               keys, tau, t0):
  """``step`` vmapped over environments: state [B, ...], obs [B, O], keys [B, 2], t0 [B];
  tau a scalar (shared) or [B]."""
  tau = jnp.asarray(tau, jnp.float32)
  fn = lambda s, o, k, tt, t: step(model, params, planner_cfg, spec_cfg, corrector,
                                   corrector_params, s, o, k, tt, t)
  return jax.vmap(fn, in_axes=(0, 0, 0, 0 if tau.ndim else None, 0))(state, obs, keys, tau, t0)


def batch_state(state: SpecState, batch: int) -> SpecState:
  return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (batch,) + x.shape), state)
