"""Speculate-verify-correct: one jitted step, a single lax.cond between replan and correct.

Per environment step (``step``):
  1. z_real = enc(obs); z_hat = latent_queue[index]; d = ||z_real - z_hat||_2.
  2. The mismatch token [z_real, z_hat, z_real - z_hat, a_spec] is pushed on the history.
  3. replan = t0 | (index >= exec_len) | (d > tau)  -> lax.cond:
     replan : MPPI from obs, refill the action queue [H, A] and latent queue [H+1, Z],
              execute the first action, index = 1 (counts one planner call; a fallback if it
              was caused by d > tau with actions still queued).
     correct: a = clip(a_spec + corrector(history, a_spec), -1, 1), index += 1.

Non-finite safety: if the observation, z_real or the chosen action is not finite, the step
emits ``SAFE_ACTION`` (zeros: the centre of the [-1, 1] action box), sets ``info.nonfinite``,
counts it in ``state.nonfinite``, keeps queues, history and planner warm start as they were (so
the NaN never reaches later steps) and forces a replan at the next step. Under jit this is a
flag, never an exception; the runners report the environment index and step.

Modes (static): 'baseline' (exec_len forced to 1: replan every step), 'spec' (no correction),
'mlp' and 'transformer' (learned correctors). ``tau`` is traced: vmap it for sweeps.
Note: under vmap a lax.cond with a batched predicate runs both branches (select), so
``step_batch`` plans at every step; ``step_batch_shared`` keeps one batch-level cond instead.
Per-step latency gains are measured unbatched (``launch/evaluate.py``).
"""
import dataclasses
import functools
from typing import NamedTuple, Optional, Tuple

import chex
import flax
import jax
import jax.numpy as jnp

from spec_jax import config as config_lib
from spec_jax import correctors as corr_lib
from spec_jax import planner as planner_lib
from spec_jax import world_model as wm_lib


def modes() -> tuple:
  """Executor modes: 'baseline', 'spec' and one per registered corrector kind."""
  return ('baseline', 'spec') + corr_lib.kinds()


@dataclasses.dataclass(frozen=True)
class SpecConfig:
  """Static speculation settings. exec_len <= planner horizon actions run per plan."""
  mode: str = 'mlp'
  exec_len: int = 3
  history: int = 4
  eval_mode: bool = True

  def __post_init__(self):
    if self.mode not in modes():
      raise ValueError(f'mode must be one of {modes()}, got {self.mode!r}')
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
  nonfinite: jax.Array      # [] int32: steps that emitted SAFE_ACTION (non-finite input)


class StepInfo(NamedTuple):
  replanned: jax.Array   # [] bool
  fallback: jax.Array    # [] bool
  d: jax.Array           # [] mismatch distance (0 at t0)
  z_real: jax.Array      # [Z]
  z_hat: jax.Array       # [Z]
  a_spec: jax.Array      # [A] queued action at this step (before correction)
  k: jax.Array           # [] int32: steps into speculation (index before the step)
  nonfinite: jax.Array   # [] bool: non-finite obs/latent/action -> SAFE_ACTION emitted


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
                   corrections=zero, fallbacks=zero, steps=zero, nonfinite=zero)


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
  bad_input: jax.Array


def _verify(model, params, planner_cfg, spec_cfg, state, obs, tau, t0) -> _Verdict:
  """Encode, measure the mismatch, push the history token, decide replan vs correct."""
  H = planner_cfg.horizon
  z_real = model.encode(params, obs)
  bad = ~(jnp.all(jnp.isfinite(obs)) & jnp.all(jnp.isfinite(z_real)))
  idx = jnp.minimum(state.index, H)
  z_hat = state.latent_queue[idx]
  d = jnp.where(t0, 0.0, jnp.linalg.norm(z_real - z_hat))
  a_spec = state.action_queue[jnp.minimum(idx, H - 1)]
  token = jnp.concatenate([z_real, z_hat, z_real - z_hat, a_spec])
  history, valid = _push(state.history, state.history_valid, token, t0)
  exhausted = state.index >= spec_cfg.effective_exec_len
  # A non-finite input never reaches the planner (its warm start would stay poisoned).
  return _Verdict(z_real, z_hat, d, a_spec, history, valid,
                  replan=(t0 | exhausted | (d > tau)) & ~bad,
                  fallback=(d > tau) & ~exhausted & ~t0 & ~bad, bad_input=bad)


def _replan_branch(model, params, planner_cfg, spec_cfg, state, obs, key, t0):
  # Warm start advanced by the queued actions executed since the last plan (state.index).
  res, pstate = planner_lib.plan(model, params, planner_cfg, state.planner, obs, key, t0,
                                 spec_cfg.eval_mode, shift=state.index)
  return res.action, res.actions, res.latents, jnp.ones((), jnp.int32), pstate


def _correct_branch(spec_cfg, corrector, corrector_params, state, v: _Verdict):
  if spec_cfg.mode in ('baseline', 'spec'):
    a = v.a_spec
  else:
    a = jnp.clip(v.a_spec + corrector.apply(corrector_params, v.history, v.valid, v.a_spec),
                 -1.0, 1.0)
  return a, state.action_queue, state.latent_queue, state.index + 1, state.planner


SAFE_ACTION = 0.0  # emitted (broadcast to [A]) whenever a step's input or output is non-finite


def _finish(state, v: _Verdict, out):
  action, aq, lq, index, pstate = out
  bad = v.bad_input | ~jnp.all(jnp.isfinite(action))
  keep = lambda new, old: jnp.where(bad, old, new)
  new_state = state.replace(
      action_queue=keep(aq, state.action_queue), latent_queue=keep(lq, state.latent_queue),
      index=jnp.where(bad, jnp.maximum(state.index, aq.shape[0]), index),  # replan next step
      history=keep(v.history, state.history), history_valid=keep(v.valid, state.history_valid),
      planner=jax.tree_util.tree_map(keep, pstate, state.planner),
      planner_calls=state.planner_calls + v.replan.astype(jnp.int32),
      corrections=state.corrections + (~v.replan & ~bad).astype(jnp.int32),
      fallbacks=state.fallbacks + v.fallback.astype(jnp.int32), steps=state.steps + 1,
      nonfinite=state.nonfinite + bad.astype(jnp.int32))
  action = jnp.where(bad, jnp.full_like(action, SAFE_ACTION), action)
  info = StepInfo(replanned=v.replan, fallback=v.fallback, d=v.d, z_real=v.z_real,
                  z_hat=v.z_hat, a_spec=v.a_spec, k=state.index, nonfinite=bad)
  return action, new_state, info


def _check(spec_cfg, corrector):
  if corr_lib.needs_corrector(spec_cfg.mode) and corrector is None:
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


def _verify_and_correct_batch(model, params, planner_cfg, spec_cfg, corrector, corrector_params,
                              state, obs, tau, t0):
  """Shared prelude of the batched steps: checks, per-env verdicts and corrected outputs."""
  chex.assert_rank(obs, 2)
  _check(spec_cfg, corrector)
  B = obs.shape[0]
  tau = jnp.broadcast_to(jnp.asarray(tau, jnp.float32), (B,))
  t0 = jnp.broadcast_to(jnp.asarray(t0, bool), (B,))
  v = jax.vmap(lambda s, o, tt, t: _verify(model, params, planner_cfg, spec_cfg, s, o, tt, t))(
      state, obs, tau, t0)
  corrected = jax.vmap(lambda s, vv: _correct_branch(spec_cfg, corrector, corrector_params, s,
                                                     vv))(state, v)
  return B, t0, v, corrected


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
  B, t0, v, corrected = _verify_and_correct_batch(model, params, planner_cfg, spec_cfg,
                                                  corrector, corrector_params, state, obs, tau, t0)

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


def capacities(batch: int) -> Tuple[int, ...]:
  """Power-of-two sub-batch sizes for compacted replanning, up to ``batch``: 8 -> (1, 2, 4, 8);
  6 -> (1, 2, 4, 6)."""
  caps, c = [], 1
  while c < batch:
    caps.append(c)
    c *= 2
  return tuple(caps) + (batch,)


def _plan_compact(model, params, planner_cfg, spec_cfg, state, obs, keys, t0, replan, cap):
  """Plans the first ``cap`` replanning environments only (gather -> plan_batch-sized vmap ->
  scatter). Returns per-env replan outputs [B, ...] (garbage where ~replan)."""
  B = obs.shape[0]
  idx = jnp.nonzero(replan, size=cap, fill_value=0)[0]                     # [cap]
  take = lambda x: x[idx]
  sub = jax.vmap(lambda s, o, k, t: _replan_branch(model, params, planner_cfg, spec_cfg, s, o,
                                                   k, t))(
      jax.tree_util.tree_map(take, state), obs[idx], keys[idx], t0[idx])
  valid = jnp.arange(cap) < jnp.sum(replan)
  scatter_idx = jnp.where(valid, idx, B)   # out-of-range rows are dropped by the scatter
  def put(x):
    base = jnp.zeros((B,) + x.shape[1:], x.dtype)
    return base.at[scatter_idx].set(x, mode='drop')
  return jax.tree_util.tree_map(put, sub)


@functools.partial(jax.jit, static_argnames=('model', 'planner_cfg', 'spec_cfg', 'corrector'))
def step_batch_compact(model: wm_lib.WorldModel, params, planner_cfg: config_lib.PlannerConfig,
                       spec_cfg: SpecConfig, corrector: Optional[corr_lib.Corrector],
                       corrector_params, state: SpecState, obs: jax.Array, keys: jax.Array,
                       tau, t0):
  """Batched step whose planner cost scales with the environments that REPLAN: they are
  gathered into a compact sub-batch whose size is the smallest power of two >= their number
  (``capacities``, chosen by lax.switch; no planner at all when none replans), planned, and
  scattered back. ``vmap(step)`` plans all B every step; ``step_batch_shared`` plans all B
  whenever any replans. Same per-environment results as ``step``.

  Args: state [B, ...], obs [B, O], keys [B, 2], tau [] or [B], t0 [] or [B].
  Returns: (action [B, A], SpecState [B, ...], StepInfo [B, ...]).
  """
  B, t0, v, corrected = _verify_and_correct_batch(model, params, planner_cfg, spec_cfg,
                                                  corrector, corrector_params, state, obs, tau, t0)
  caps = capacities(B)
  n = jnp.sum(v.replan.astype(jnp.int32))
  # branch 0: nobody replans; branch i >= 1: capacity caps[i - 1] >= n.
  branch = jnp.where(n == 0, 0, 1 + capacity_index(n, caps))
  def planned(cap):
    def fn():
      p = _plan_compact(model, params, planner_cfg, spec_cfg, state, obs, keys, t0, v.replan, cap)
      pick = lambda a, b: jnp.where(v.replan.reshape((B,) + (1,) * (a.ndim - 1)), a, b)
      return jax.tree_util.tree_map(pick, p, corrected)
    return fn
  out = jax.lax.switch(branch, [lambda: corrected] + [planned(c) for c in caps])
  return jax.vmap(_finish)(state, v, out)


def capacity_index(n: jax.Array, caps: Tuple[int, ...]) -> jax.Array:
  """Index (traced) of the smallest capacity in ``caps`` >= ``n`` replanning environments."""
  return jnp.minimum(jnp.searchsorted(jnp.asarray(caps), n), len(caps) - 1)


def executed_plans(num_replans: int, batch: int) -> int:
  """Planner evaluations ``step_batch_compact`` executes when ``num_replans`` of ``batch``
  environments replan: the smallest capacity >= num_replans (0 when none)."""
  if num_replans <= 0:
    return 0
  return next(c for c in capacities(batch) if c >= num_replans)
