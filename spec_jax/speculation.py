"""Speculate-verify-correct: one jitted step, a single lax.cond between replan and correct.

Static parts travel in one frozen ``Executor`` (model, planner config, speculation config,
corrector, acceptance head); parameters in ``ExecParams``; every step function takes
(executor, params, state, obs, key, tau, t0).

Per environment step (``step``):
  1. z_real = enc(obs); z_hat = latent_queue[index]; d = ||z_real - z_hat||_2.
  2. At a queue end with a valid ``ReadyPlan`` (plan-ahead: planned from z_hat while the queue
     ran), the ready plan becomes the queue (index 0) if the gate accepts.
  3. The mismatch token [z_real, z_hat, z_real - z_hat, a_spec] is pushed on the history.
  4. Gate score: d ('norm', the paper's verifier) or the acceptance head's rejection
     probability ('learned'). replan = t0 | (queue exhausted and nothing adopted) |
     (score > tau) -> lax.cond:
     replan : MPPI from obs, refill the action queue [H, A] and latent queue [H+1, Z],
              execute the first action, index = 1 (counts one planner call; a fallback if the
              gate rejected a step that had a queue (or a ready plan) to continue).
     correct: a = clip(a_spec + corrector(history, a_spec), -1, 1), index += 1.

Non-finite safety: if the observation, z_real or the chosen action is not finite, the step
emits ``SAFE_ACTION`` (zeros: the centre of the [-1, 1] action box), sets ``info.nonfinite``,
counts it in ``state.nonfinite``, keeps queues, history and planner warm start as they were (so
the NaN never reaches later steps) and forces a replan at the next step. Under jit this is a
flag, never an exception; the runners report the environment index and step.

Modes (static): 'baseline' (exec_len forced to 1: replan every step), 'spec' (no correction),
and one per registered corrector kind ('mlp', 'transformer'). ``tau`` is traced: vmap it.
Note: under vmap a lax.cond with a batched predicate runs both branches (select), so
``step_batch`` plans at every step; ``step_batch_shared`` keeps one batch-level cond;
``step_batch_compact`` plans only the environments that replan, as one vmapped sub-batch, and
``step_batch_sequential`` plans them one at a time in a while_loop.
"""
import dataclasses
import functools
from typing import NamedTuple, Optional, Tuple

import chex
import flax
import jax
import jax.numpy as jnp

from spec_jax import acceptance as acc_lib
from spec_jax import config as config_lib
from spec_jax import correctors as corr_lib
from spec_jax import planner as planner_lib
from spec_jax import world_model as wm_lib


def modes() -> tuple:
  """Executor modes: 'baseline', 'spec' and one per registered corrector kind."""
  return ('baseline', 'spec') + corr_lib.kinds()


GATES = ('norm', 'learned')  # verifier: ||z_real - z_hat|| > tau, or p_reject(features) > tau
ON_REJECT = ('replan', 'defer')  # a rejected step waits for a plan, or corrects and plans ahead


@dataclasses.dataclass(frozen=True)
class SpecConfig:
  """Static speculation settings. exec_len <= planner horizon actions run per plan.
  gate: 'norm' (the paper's latent distance) or 'learned' (acceptance head; tau is then a
  rejection probability). on_reject: 'replan' (the paper: a rejected step waits for a fresh
  plan) or 'defer' (a rejected step that has a queue or an offered ready plan to continue
  executes its corrected action now, and the host plans ahead from the one-step prediction of
  the real latent (``rescue_plan``), offered at the next step; only an episode's first step
  (or an exhausted queue with nothing offered) runs a planner inside the step; the next step
  waits for the rescue plan only if it is not finished within one control period)."""
  mode: str = 'mlp'
  exec_len: int = 3
  history: int = 4
  eval_mode: bool = True
  gate: str = 'norm'
  on_reject: str = 'replan'

  def __post_init__(self):
    if self.mode not in modes():
      raise ValueError(f'mode must be one of {modes()}, got {self.mode!r}')
    if self.exec_len < 1 or self.history < 1:
      raise ValueError('exec_len and history must be >= 1')
    if self.gate not in GATES:
      raise ValueError(f'gate must be one of {GATES}, got {self.gate!r}')
    if self.on_reject not in ON_REJECT:
      raise ValueError(f'on_reject must be one of {ON_REJECT}, got {self.on_reject!r}')

  @property
  def effective_exec_len(self) -> int:
    return 1 if self.mode == 'baseline' else self.exec_len


@dataclasses.dataclass(frozen=True)
class Executor:
  """The static parts of the speculative executor, bundled (hashable: a jit static argument).

  model: the world model; planner: its MPPI settings (horizon >= spec.exec_len); spec: the
  speculation settings; corrector: needed by corrector modes; acceptance: needed by
  gate='learned'; fallback_planner: optional cheaper MPPI settings (same horizon) for the
  replans the gate forces (anytime fallback: warm-started from the freshest plan, the ready
  plan's when one was offered; a latency device for the host loop: under vmap the inner cond
  becomes a select and batched steps run both planners); None: every replan uses ``planner``.
  Sweepable values (tau) and parameters are NOT here (see ExecParams).
  """
  model: wm_lib.WorldModel
  planner: config_lib.PlannerConfig
  spec: SpecConfig
  corrector: Optional[corr_lib.Corrector] = None
  acceptance: Optional[acc_lib.AcceptanceHead] = None
  fallback_planner: Optional[config_lib.PlannerConfig] = None

  def __post_init__(self):
    if (self.fallback_planner is not None and
        self.fallback_planner.horizon != self.planner.horizon):
      raise ValueError(f'fallback_planner horizon ({self.fallback_planner.horizon}) must equal '
                       f'the planner horizon ({self.planner.horizon})')
    if corr_lib.needs_corrector(self.spec.mode) and self.corrector is None:
      raise ValueError(f'mode {self.spec.mode!r} needs a corrector')
    if self.spec.gate == 'learned' and self.acceptance is None:
      raise ValueError("gate 'learned' needs an acceptance head (distill with acceptance=True)")
    if self.corrector is not None and corr_lib.needs_corrector(self.spec.mode) and (
        self.corrector.cfg.kind != self.spec.mode or
        self.corrector.cfg.history != self.spec.history):
      raise ValueError(f'mode {self.spec.mode!r} (history {self.spec.history}) got a '
                       f'{self.corrector.cfg.kind!r} corrector (history '
                       f'{self.corrector.cfg.history})')
    if self.spec.exec_len > self.planner.horizon:
      raise ValueError(f'exec_len ({self.spec.exec_len}) cannot exceed the planner horizon '
                       f'({self.planner.horizon})')


class ExecParams(NamedTuple):
  """Parameters of an Executor: world model, corrector (or None), acceptance head (or None)."""
  model: chex.ArrayTree
  corrector: chex.ArrayTree = None
  acceptance: chex.ArrayTree = None


@flax.struct.dataclass
class SpecState:
  action_queue: jax.Array   # [H, A]
  latent_queue: jax.Array   # [H+1, Z]
  index: jax.Array          # [] int32: queued actions already executed
  history: jax.Array        # [K, F] mismatch tokens, newest last
  history_valid: jax.Array  # [K] bool
  planner: planner_lib.PlannerState
  planner_calls: jax.Array  # [] int32: blocking planner calls (plans the step waited for)
  corrections: jax.Array    # [] int32
  fallbacks: jax.Array      # [] int32: replans forced by the gate (mismatch) with a queue left
                            #    (on_reject 'defer': none; rejections count in ``deferred``)
  steps: jax.Array          # [] int32
  nonfinite: jax.Array      # [] int32: steps that emitted SAFE_ACTION (non-finite input)
  adopted: jax.Array        # [] int32: ready (plan-ahead) plans the gate accepted
  deferred: jax.Array       # [] int32: rejected steps that corrected instead of waiting


class StepInfo(NamedTuple):
  replanned: jax.Array   # [] bool
  fallback: jax.Array    # [] bool
  d: jax.Array           # [] mismatch distance (0 at t0)
  z_real: jax.Array      # [Z]
  z_hat: jax.Array       # [Z]
  a_spec: jax.Array      # [A] queued action at this step (before correction)
  k: jax.Array           # [] int32: steps into the queue the action comes from
  nonfinite: jax.Array   # [] bool: non-finite obs/latent/action -> SAFE_ACTION emitted
  adopted: jax.Array     # [] bool: the gate accepted a ready plan, now the queue
  score: jax.Array       # [] the gate's statistic: d ('norm') or p_reject ('learned')
  deferred: jax.Array    # [] bool: rejected, corrected action emitted, no wait (on_reject
                         #    'defer'): dispatch ``rescue_plan`` for the next step


class ReadyPlan(NamedTuple):
  """A plan made ahead of time: from the predicted latent where the queue runs out
  (``plan_ahead``, offered at the queue end), from the L-step prediction of the real latent L
  steps before the queue end (``plan_ahead_late``, offered at the queue end) or, after a
  deferred rejection, from the one-step prediction of the real latent (``rescue_plan``, offered
  at the next step). Adopted if the gate accepts its seed, with no planner wait."""
  actions: jax.Array    # [H, A]
  latents: jax.Array    # [H+1, Z]; latents[0] is the seed z_hat
  prev_mean: jax.Array  # [H, A] the planner state after that plan (warm start)
  valid: jax.Array      # [] bool


def no_ready(ex: Executor) -> ReadyPlan:
  """The empty ReadyPlan (valid=False): the executor behaves as the paper's."""
  H, A, Z = ex.planner.horizon, ex.model.cfg.action_dim, ex.model.cfg.latent_dim
  return ReadyPlan(jnp.zeros((H, A)), jnp.zeros((H + 1, Z)), jnp.zeros((H, A)),
                   jnp.zeros((), bool))


def init_state(ex: Executor) -> SpecState:
  H, A, Z = ex.planner.horizon, ex.model.cfg.action_dim, ex.model.cfg.latent_dim
  zero = jnp.zeros((), jnp.int32)
  return SpecState(action_queue=jnp.zeros((H, A)), latent_queue=jnp.zeros((H + 1, Z)),
                   index=jnp.full((), H, jnp.int32),
                   history=jnp.zeros((ex.spec.history, 3 * Z + A)),
                   history_valid=jnp.zeros((ex.spec.history,), bool),
                   planner=planner_lib.init_state(ex.planner, A), planner_calls=zero,
                   corrections=zero, fallbacks=zero, steps=zero, nonfinite=zero, adopted=zero,
                   deferred=zero)


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
  adopt: jax.Array          # the gate accepted the ready plan: the queue from this step on
  deferred: jax.Array       # rejected, continues corrected (on_reject 'defer')
  k: jax.Array              # index of a_spec in the (possibly adopted) queue
  action_queue: jax.Array   # [H, A] the queue a correcting step continues
  latent_queue: jax.Array   # [H+1, Z]
  prev_mean: jax.Array      # [H, A] planner warm start a correcting step keeps
  score: jax.Array


def _gate_score(ex: Executor, params: ExecParams, token, d, k):
  if ex.spec.gate == 'learned':
    return ex.acceptance.p_reject(params.acceptance, token, d, k)
  return d


def _verify(ex: Executor, params: ExecParams, state, obs, tau, t0, ready, task=None) -> _Verdict:
  """Encode, measure the mismatch, adopt a ready plan at a queue end (or wherever one is
  offered, with on_reject 'defer'), push the history token, decide replan vs correct."""
  H = ex.planner.horizon
  ready = no_ready(ex) if ready is None else ready
  defer = ex.spec.on_reject == 'defer'
  z_real = ex.model.encode(params.model, obs, **planner_lib.task_kwargs(task))
  bad = ~(jnp.all(jnp.isfinite(obs)) & jnp.all(jnp.isfinite(z_real)))
  exhausted = state.index >= ex.spec.effective_exec_len
  can_adopt = (exhausted | defer) & ready.valid & ~t0
  pick = lambda r, s: jnp.where(can_adopt, r, s)
  # A ready plan is verified against its own seed latents[0] (plan_ahead: latent_queue[E];
  # plan_ahead_late / rescue_plan: the prediction made from a later real latent).
  z_hat = pick(ready.latents[0], state.latent_queue[jnp.minimum(state.index, H)])
  d = jnp.where(t0, 0.0, jnp.linalg.norm(z_real - z_hat))
  aq, lq = pick(ready.actions, state.action_queue), pick(ready.latents, state.latent_queue)
  k = jnp.where(can_adopt, 0, state.index)
  a_spec = aq[jnp.minimum(k, H - 1)]
  token = jnp.concatenate([z_real, z_hat, z_real - z_hat, a_spec])
  history, valid = _push(state.history, state.history_valid, token, t0)
  score = _gate_score(ex, params, token, d, k)
  reject = (score > tau) & ~t0
  keeps_going = ~exhausted | can_adopt
  # A non-finite input never reaches the planner (its warm start would stay poisoned).
  replan = (t0 | ~keeps_going | (reject & (not defer))) & ~bad
  return _Verdict(z_real, z_hat, d, a_spec, history, valid, replan=replan,
                  fallback=reject & keeps_going & replan, bad_input=bad,
                  adopt=can_adopt & ~reject & ~replan & ~bad,
                  deferred=reject & keeps_going & ~replan & ~bad, k=k, action_queue=aq,
                  latent_queue=lq, prev_mean=pick(ready.prev_mean, state.planner.prev_mean),
                  score=score)


def _replan_branch(ex: Executor, params: ExecParams, state, v: _Verdict, obs, key, t0,
                   task=None):
  def plan(pcfg, pstate, shift):
    res, pstate = planner_lib.plan(ex.model, params.model, pcfg, pstate, obs, key, t0,
                                   ex.spec.eval_mode, shift=shift, task=task)
    return res.action, res.actions, res.latents, jnp.ones((), jnp.int32), pstate

  # Warm start advanced by the queued actions executed since the last plan (state.index).
  full = lambda: plan(ex.planner, state.planner, state.index)
  if ex.fallback_planner is None:
    return full()
  # Anytime fallback: v.prev_mean / v.k are the offered ready plan's mean at index 0 (it was
  # planned for this very step), else the current plan's mean and its executed count.
  cheap = lambda: plan(ex.fallback_planner, planner_lib.PlannerState(prev_mean=v.prev_mean), v.k)
  return jax.lax.cond(v.fallback, cheap, full)


def _correct_branch(ex: Executor, params: ExecParams, v: _Verdict, task=None):
  if not corr_lib.needs_corrector(ex.spec.mode):
    a = v.a_spec
  else:
    a = ex.corrector.correct(params.corrector, v.history, v.valid, v.a_spec)
    if task is not None:   # multitask: the task's action dimensions only, as the planner's
      a = a * ex.model.action_mask(task)
  return (a, v.action_queue, v.latent_queue, v.k + 1,
          planner_lib.PlannerState(prev_mean=v.prev_mean))


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
      nonfinite=state.nonfinite + bad.astype(jnp.int32),
      adopted=state.adopted + (v.adopt & ~bad).astype(jnp.int32),
      deferred=state.deferred + (v.deferred & ~bad).astype(jnp.int32))
  action = jnp.where(bad, jnp.full_like(action, SAFE_ACTION), action)
  info = StepInfo(replanned=v.replan, fallback=v.fallback, d=v.d, z_real=v.z_real,
                  z_hat=v.z_hat, a_spec=v.a_spec, k=v.k, nonfinite=bad,
                  adopted=v.adopt & ~bad, score=v.score, deferred=v.deferred & ~bad)
  return action, new_state, info


@functools.partial(jax.jit, static_argnames=('ex',))
def step(ex: Executor, params: ExecParams, state: SpecState, obs: jax.Array, key: jax.Array,
         tau, t0, ready: Optional[ReadyPlan] = None, task=None):
  """One speculative step for one environment: ONE lax.cond between replan and correct.

  Args:
    ex: the Executor (static). params: ExecParams. state: SpecState.
    obs: [O] observation. key: planner key (used when replanning).
    tau: [] gate threshold (traced: vmap it for sweeps); a distance for gate='norm', a
      rejection probability for gate='learned'. t0: [] bool, first step of an episode.
    ready: optional ReadyPlan; adopted at a queue end if the gate accepts (on_reject 'defer':
      at any queue position, and a rejected one is continued, corrected, as the queue).
    task: [] int task id for a multitask model (None: single-task); encoder and planner use it
      (task embedding, action mask, the task's discount).
  Returns:
    (action [A], SpecState, StepInfo).
  """
  if obs.shape != (ex.model.cfg.obs_dim,):
    raise ValueError(f'step: obs must be [{ex.model.cfg.obs_dim}], got {tuple(obs.shape)}; use '
                     'step_batch_compact for [B, O]')
  t0 = jnp.asarray(t0, bool)
  if getattr(ex.model.cfg, 'multitask', False) != (task is not None):
    raise ValueError('step: a multitask model needs task=<id>; a single-task model takes none')
  v = _verify(ex, params, state, obs, jnp.asarray(tau, jnp.float32), t0, ready, task)
  out = jax.lax.cond(v.replan,
                     lambda: _replan_branch(ex, params, state, v, obs, key, t0, task),
                     lambda: _correct_branch(ex, params, v, task))
  return _finish(state, v, out)


def _check_batch(ex: Executor, task, B: int):
  """The common entry check of every batched step: refuses on_reject 'defer' and returns
  task [] or [B] int -> [B] (multitask models), None for single-task models (checked).
  on_reject 'defer' is refused because batched steps get no rescue plans, so a deferred rejection
  would silently continue its queue (the gate would be off)."""
  if ex.spec.on_reject == 'defer':
    raise ValueError("batched steps do not support on_reject='defer' (rescue plans are made by "
                     "the host loop, evaluation.run_episode with plan-ahead)")
  if getattr(ex.model.cfg, 'multitask', False) != (task is not None):
    raise ValueError('batched step: a multitask model needs task=<id or [B] ids>; a single-task '
                     'model takes none')
  return None if task is None else jnp.broadcast_to(jnp.asarray(task, jnp.int32), (B,))


def _verify_and_correct_batch(ex: Executor, params: ExecParams, state, obs, tau, t0, task=None):
  """Shared prelude of the batched steps: checks, per-env verdicts and corrected outputs."""
  chex.assert_rank(obs, 2)
  B = obs.shape[0]
  tau = jnp.broadcast_to(jnp.asarray(tau, jnp.float32), (B,))
  t0 = jnp.broadcast_to(jnp.asarray(t0, bool), (B,))
  task = _check_batch(ex, task, B)
  v = jax.vmap(lambda s, o, tt, t, c: _verify(ex, params, s, o, tt, t, None, c),
               in_axes=(0, 0, 0, 0, None if task is None else 0))(state, obs, tau, t0, task)
  corrected = jax.vmap(lambda vv, c: _correct_branch(ex, params, vv, c),
                       in_axes=(0, None if task is None else 0))(v, task)
  return B, t0, v, corrected, task


def _replan_batch(ex: Executor, params: ExecParams, state, v, obs, keys, t0, task):
  """``_replan_branch`` vmapped over the leading axis of every argument (task: [B] or None)."""
  fn = lambda s, vv, o, k, t, c: _replan_branch(ex, params, s, vv, o, k, t, c)
  return jax.vmap(fn, in_axes=(0, 0, 0, 0, 0, None if task is None else 0))(
      state, v, obs, keys, t0, task)


@functools.partial(jax.jit, static_argnames=('ex',))
def step_batch_shared(ex: Executor, params: ExecParams, state: SpecState, obs: jax.Array,
                      keys: jax.Array, tau, t0, task=None):
  """Batched step for B environments with ONE lax.cond over the batch: the (vmapped) planner
  runs only when at least one environment must replan, and its result is kept only for those.

  ``vmap(step)`` turns the per-env cond into a select that plans at every step; this variant
  skips planning on the steps where every environment corrects, which is what makes large
  vectorised sweeps cheap. state [B, ...], obs [B, O], keys [B, 2], tau [] or [B], t0 [B],
  task [] or [B] (multitask models only). Same results as ``step`` per environment (up to
  batched float rounding).
  """
  B, t0, v, corrected, task = _verify_and_correct_batch(ex, params, state, obs, tau, t0, task)

  def with_plan():
    planned = _replan_batch(ex, params, state, v, obs, keys, t0, task)
    pick = lambda p, c: jnp.where(v.replan.reshape((B,) + (1,) * (p.ndim - 1)), p, c)
    return jax.tree_util.tree_map(pick, planned, corrected)

  out = jax.lax.cond(jnp.any(v.replan), with_plan, lambda: corrected)
  return jax.vmap(_finish)(state, v, out)


def step_batch(ex: Executor, params: ExecParams, state, obs, keys, tau, t0, task=None):
  """``step`` vmapped over environments: state [B, ...], obs [B, O], keys [B, 2], t0 [B];
  tau a scalar (shared) or [B]; task [] or [B] (multitask models only)."""
  tau = jnp.asarray(tau, jnp.float32)
  task = _check_batch(ex, task, obs.shape[0])
  fn = lambda s, o, k, tt, t, c: step(ex, params, s, o, k, tt, t, task=c)
  return jax.vmap(fn, in_axes=(0, 0, 0, 0 if tau.ndim else None, 0,
                               None if task is None else 0))(state, obs, keys, tau, t0, task)


def batch_state(state: SpecState, batch: int) -> SpecState:
  return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (batch,) + x.shape), state)


def capacities(batch: int, steps: int = 8) -> Tuple[int, ...]:
  """Sub-batch sizes for compacted replanning, up to ``batch``: powers of two below the granule
  g = ceil(batch / steps), then multiples of g, so at most g - 1 padding rows are planned
  (about 1/steps of the batch) with at most log2(g) + steps branches to compile.
  64 -> (1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64); 8 -> (1, 2, ..., 8); 6 -> (1, ..., 6)."""
  if batch < 1 or steps < 1:
    raise ValueError(f'capacities needs batch >= 1 and steps >= 1, got {batch}, {steps}')
  g = -(-batch // steps)
  caps, c = [], 1
  while c < g:
    caps.append(c)
    c *= 2
  caps += list(range(g, batch, g))
  return tuple(caps) + (batch,)


def _replan_inputs(state, v, obs, keys, t0, task, index):
  """The (state, verdict, obs, key, t0, task) arguments of ``_replan_branch`` for the rows
  ``index`` of a batch (an int: one environment; an array [C]: a sub-batch)."""
  take = lambda x: x[index]
  return (jax.tree_util.tree_map(take, state), jax.tree_util.tree_map(take, v), obs[index],
          keys[index], t0[index], None if task is None else task[index])


def _plan_compact(ex: Executor, params: ExecParams, state, v, obs, keys, t0, replan, cap,
                  task=None):
  """Plans the first ``cap`` replanning environments only (gather -> plan_batch-sized vmap ->
  scatter). Returns per-env replan outputs [B, ...] (garbage where ~replan)."""
  B = obs.shape[0]
  idx = jnp.nonzero(replan, size=cap, fill_value=0)[0]                     # [cap]
  sub = _replan_batch(ex, params, *_replan_inputs(state, v, obs, keys, t0, task, idx))
  valid = jnp.arange(cap) < jnp.sum(replan)
  scatter_idx = jnp.where(valid, idx, B)   # out-of-range rows are dropped by the scatter
  def put(x):
    base = jnp.zeros((B,) + x.shape[1:], x.dtype)
    return base.at[scatter_idx].set(x, mode='drop')
  return jax.tree_util.tree_map(put, sub)


@functools.partial(jax.jit, static_argnames=('ex',))
def step_batch_compact(ex: Executor, params: ExecParams, state: SpecState, obs: jax.Array,
                       keys: jax.Array, tau, t0, task=None):
  """Batched step whose planner cost scales with the environments that REPLAN: they are
  gathered into a compact sub-batch whose size is the smallest of ``capacities`` >= their
  number (chosen by lax.switch; no planner at all when none replans), planned, and
  scattered back. ``vmap(step)`` plans all B every step; ``step_batch_shared`` plans all B
  whenever any replans. Same per-environment results as ``step``.

  Args: state [B, ...], obs [B, O], keys [B, 2], tau [] or [B], t0 [] or [B], task [] or [B]
    (multitask models only: each environment's task id).
  Returns: (action [B, A], SpecState [B, ...], StepInfo [B, ...]).
  """
  B, t0, v, corrected, task = _verify_and_correct_batch(ex, params, state, obs, tau, t0, task)
  caps = capacities(B)
  n = jnp.sum(v.replan.astype(jnp.int32))
  # branch 0: nobody replans; branch i >= 1: capacity caps[i - 1] >= n.
  branch = jnp.where(n == 0, 0, 1 + capacity_index(n, caps))
  def planned(cap):
    def fn():
      p = _plan_compact(ex, params, state, v, obs, keys, t0, v.replan, cap, task)
      pick = lambda a, b: jnp.where(v.replan.reshape((B,) + (1,) * (a.ndim - 1)), a, b)
      return jax.tree_util.tree_map(pick, p, corrected)
    return fn
  out = jax.lax.switch(branch, [lambda: corrected] + [planned(c) for c in caps])
  return jax.vmap(_finish)(state, v, out)


@functools.partial(jax.jit, static_argnames=('ex',))
def step_batch_sequential(ex: Executor, params: ExecParams, state: SpecState, obs: jax.Array,
                          keys: jax.Array, tau, t0, task=None):
  """Batched step that plans the replanning environments ONE AT A TIME in a lax.while_loop
  whose trip count is their number: exactly the needed plans, each at the cost of a single
  ``step``'s plan (no padding rows, no batched planner). Verification and correction stay
  batched. For hosts where one plan already fills the device (a CPU core), so batching the
  planner does not raise its rate while ``step_batch_compact``'s padding rows cost time (2 CPU
  cores: 0.92-1.03x the point-by-point loop at B = 64 and 1.14x at B = 256, compact 0.78-0.91x
  and 0.81x; BUILD_NOTES session 10). Per-environment results equal ``step``'s (each plan is
  one environment's plan: no batched rounding).

  Args: state [B, ...], obs [B, O], keys [B, 2], tau [] or [B], t0 [] or [B], task [] or [B]
    (multitask models only: each environment's task id).
  Returns: (action [B, A], SpecState [B, ...], StepInfo [B, ...]).
  """
  B, t0, v, corrected, task = _verify_and_correct_batch(ex, params, state, obs, tau, t0, task)
  idx = jnp.nonzero(v.replan, size=B, fill_value=0)[0]                    # [B]
  n = jnp.sum(v.replan.astype(jnp.int32))

  def body(carry):
    i, out = carry
    j = idx[i]
    planned = _replan_branch(ex, params, *_replan_inputs(state, v, obs, keys, t0, task, j))
    return i + 1, jax.tree_util.tree_map(lambda o, p: o.at[j].set(p), out, planned)

  _, out = jax.lax.while_loop(lambda c: c[0] < n, body, (jnp.zeros((), jnp.int32), corrected))
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


@functools.partial(jax.jit, static_argnames=('ex',))
def plan_ahead(ex: Executor, params: ExecParams, state: SpecState, key: jax.Array,
               task=None) -> ReadyPlan:
  """Plan-ahead: MPPI from the predicted latent where the current queue runs out
  (latent_queue[E], E = exec_len), warm-started from the queue's plan advanced by E steps.
  Dispatch it right after a step that installed a new queue (info.replanned or info.adopted)
  and pass the result as ``ready`` to the step at index E. Returns a valid ReadyPlan."""
  E = ex.spec.effective_exec_len
  res, pstate = planner_lib.plan_from_latent(ex.model, params.model, ex.planner, state.planner,
                                             state.latent_queue[E], key, False,
                                             ex.spec.eval_mode, shift=E, task=task)
  return ReadyPlan(res.actions, res.latents, pstate.prev_mean, jnp.ones((), bool))


def _plan_from_real(ex: Executor, params: ExecParams, state: SpecState, z_real, action, key,
                    pcfg, lead: int, task=None) -> ReadyPlan:
  """MPPI from the ``lead``-step prediction of the real latent: z' = d(z_real, action), then
  the next lead - 1 queued actions; warm start advanced by the actions executed by then."""
  chex.assert_shape(z_real, (ex.model.cfg.latent_dim,))
  chex.assert_shape(action, (ex.model.cfg.action_dim,))
  kw = planner_lib.task_kwargs(task)
  z = ex.model.next(params.model, z_real, action, **kw)
  H = ex.planner.horizon
  for j in range(lead - 1):  # queued actions not executed yet (their corrections are unknown)
    z = ex.model.next(params.model, z, state.action_queue[jnp.minimum(state.index + j, H - 1)],
                      **kw)
  res, pstate = planner_lib.plan_from_latent(ex.model, params.model, pcfg, state.planner, z,
                                             key, False, ex.spec.eval_mode,
                                             shift=state.index + lead - 1, task=task)
  return ReadyPlan(res.actions, res.latents, pstate.prev_mean, jnp.ones((), bool))


@functools.partial(jax.jit, static_argnames=('ex', 'lead'))
def plan_ahead_late(ex: Executor, params: ExecParams, state: SpecState, z_real: jax.Array,
                    action: jax.Array, key: jax.Array, lead: int, task=None) -> ReadyPlan:
  """Plan-ahead dispatched ``lead`` steps before the queue end (1 <= lead <= E) instead of at
  the queue install: MPPI (the full planner) from the ``lead``-step prediction of the latent at
  the queue end made from the REAL latent of the step just taken, z' = d(z_real, action) then
  the remaining lead - 1 queued (uncorrected) actions; warm start: the queue's plan advanced to
  the queue end (shift state.index + lead - 1 = E). For lead < E a shorter prediction than
  ``plan_ahead``'s E-step one, so the gate at the queue end sees a smaller mismatch (lead = E
  equals ``plan_ahead`` after a replan, whose emitted action is the planned one; after an
  adopted queue it differs by the corrected first action and the real seed latent); the plan has
  ``lead`` control periods to finish. Dispatch it after the step that leaves ``lead - 1``
  queued actions (``state.index == E - lead + 1``) and offer it to the step at index E.

  Args:
    state: the SpecState that step returned. z_real: [Z] its info.z_real.
    action: [A] the action it emitted. key: planner key. lead: static, >= 1.
  Returns:
    a valid ReadyPlan whose latents[0] is z'.
  """
  if not 1 <= lead <= ex.spec.effective_exec_len:
    raise ValueError(f'plan_ahead_late: lead must be in 1..{ex.spec.effective_exec_len} (the '
                     f'execution length), got {lead}')
  return _plan_from_real(ex, params, state, z_real, action, key, ex.planner, lead, task)


@functools.partial(jax.jit, static_argnames=('ex',))
def rescue_plan(ex: Executor, params: ExecParams, state: SpecState, z_real: jax.Array,
                action: jax.Array, key: jax.Array, task=None) -> ReadyPlan:
  """After a deferred step (``info.deferred``, on_reject 'defer'): MPPI from the one-step
  prediction of the REAL latent, z' = d(z_real, action), with the fallback planner when the
  executor has one (else its planner), warm-started from the continued plan advanced by the
  actions executed since it (``state.index``). Offer it as ``ready`` to the next step: adopted
  if the gate accepts ||z_real' - z'||, otherwise that step defers again.

  Args:
    state: the SpecState the deferred step returned. z_real: [Z] that step's info.z_real.
    action: [A] the action it emitted. key: planner key.
  Returns:
    a valid ReadyPlan whose latents[0] is z'.
  """
  pcfg = ex.planner if ex.fallback_planner is None else ex.fallback_planner
  return _plan_from_real(ex, params, state, z_real, action, key, pcfg, 1, task)
