"""Evaluation of speculation modes on a host environment (dm_control): returns, planner calls,
corrections, fallbacks, non-finite steps and per-step decision latency (compile excluded), as
CSV, markdown and a plot (``spec_jax.reporting``)."""
import dataclasses
import os
import statistics
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from spec_jax import correctors as corr_lib
from spec_jax import online as online_lib
from spec_jax import reporting
from spec_jax import speculation as sp

# ahead_calls: plans made ahead per episode (plan-ahead and rescue plans); ready_accept: the
# fraction of offered ready plans (all kinds) the gate accepted; end_accept: the same for the
# plans made ahead for a queue end (rescue plans excluded); deferred: rejections that
# corrected instead of waiting (on_reject 'defer'; fallbacks counts only gate-forced replans).
COLUMNS = ('mode', 'gate', 'ahead', 'online', 'tau', 'tau_q', 'exec_len', 'horizon', 'episodes',
           'return_mean', 'return_std', 'return_median', 'return_q25', 'return_q75', 'failed',
           'fail_below', 'ratio', 'ratio_lo', 'ratio_hi', 'diff_mean', 'diff_median',
           'planner_calls', 'ahead_calls', 'adopted', 'ready_accept', 'corrections', 'fallbacks',
           'nonfinite',
           'step_ms_mean', 'step_ms_median', 'step_ms_p99', 'step_ms_max', 'replan_ms_median',
           'correct_ms_median', 'correct_to_replan_ratio', 'p99_to_plan', 'period_ms',
           'online_labels', 'online_updates', 'fallback_planner', 'on_reject', 'deferred',
           'ahead_lead', 'end_accept')
SHORT_COLUMNS = ('mode', 'gate', 'ahead', 'ahead_lead', 'on_reject', 'fallback_planner',
                 'online', 'tau', 'tau_q', 'exec_len', 'return_mean', 'return_std',
                 'return_median', 'return_q25', 'return_q75', 'failed', 'ratio', 'ratio_lo',
                 'ratio_hi', 'planner_calls', 'fallbacks', 'deferred', 'step_ms_median',
                 'step_ms_p99')


class Runtime(NamedTuple):
  """How decisions are made and timed. plan_ahead: dispatch ``speculation.plan_ahead`` after
  every new queue and adopt it at the queue end (on a second device when there is one, so it
  runs while the host steps the simulator). period_ms > 0: real-time pacing, each decision
  period is slept out (a robot's control period; returns do not depend on it, latencies do).
  online: adapt the corrector on the teacher labels of its own replans (``spec_jax.online``),
  carried across the episodes of a mode. ahead_lead: 0 = plan ahead at the queue install from
  the plan's own E-step prediction (``speculation.plan_ahead``); L in 1..E = plan ahead L steps
  before the queue end from the L-step prediction of the real latent
  (``speculation.plan_ahead_late``: a fresher seed for L < E, L control periods to finish; L = E
  differs from 0 only after an adopted queue, whose seed latent was itself predicted). With
  on_reject 'defer', a deferred step gets a rescue plan instead (made for the next step)."""
  plan_ahead: bool = False
  period_ms: float = 0.0
  online: Optional[online_lib.OnlineConfig] = None
  ahead_lead: int = 0

  def check(self, ex: sp.Executor):
    """Raises ValueError for settings the executor cannot run."""
    if ex.spec.on_reject == 'defer' and not self.plan_ahead:
      raise ValueError("on_reject='defer' needs Runtime(plan_ahead=True): without rescue plans "
                       'a rejected step would continue its queue (the gate off)')
    if not isinstance(self.ahead_lead, (int, np.integer)) or isinstance(self.ahead_lead, bool):
      raise ValueError(f'ahead_lead must be an integer, got {self.ahead_lead!r}')
    if self.ahead_lead and not self.plan_ahead:
      raise ValueError('ahead_lead needs Runtime(plan_ahead=True)')
    if not 0 <= self.ahead_lead <= ex.spec.effective_exec_len:
      raise ValueError(f'ahead_lead must be in 0..{ex.spec.effective_exec_len} (the execution '
                       f'length), got {self.ahead_lead}')


def _devices():
  """(step device, plan-ahead device, rescue device): three devices when available (CPU: run
  with XLA_FLAGS=--xla_force_host_platform_device_count=3, as launch/evaluate.py does), so a
  rescue plan (on_reject 'defer') never queues behind a plan-ahead still running for the queue
  it replaces (a device runs one computation at a time); with two, rescue plans share the
  plan-ahead device; with one, everything queues behind the steps and nothing is hidden."""
  devs = jax.local_devices()
  pick = lambda i: devs[min(i, len(devs) - 1)]
  return pick(0), pick(1), pick(2)


def _committed(x):
  """``x`` committed to the step device. Every pytree argument of ``sp.step`` is passed this way,
  in the warm-up and in every episode step: jit keys its cache on committedness, so a mix
  would compile a new variant in the middle of a timed episode (seconds of "latency")."""
  return jax.device_put(x, _devices()[0])


def _label(ex, online_state, state, info, action, t):
  """Pushes the teacher label of a replan whose step had a speculative action queued."""
  k = int(info.k)
  if t == 0 or not bool(info.replanned) or bool(info.nonfinite) or not 1 <= k < ex.planner.horizon:
    return online_state
  return online_lib.push(online_state, state.history, state.history_valid, info.a_spec, action)


def _launch_next_plan(ex: sp.Executor, runtime: Runtime, dev_params, state, info, action,
                      ahead_key: jax.Array, rescue: bool, task: Optional[int]):
  """Dispatches (asynchronously) the plan this step calls for, or returns None: a rescue plan
  from the real latent after a deferred rejection, a late plan-ahead ``lead`` steps before the
  queue end, or a plan-ahead from the predicted latent after a new plan was adopted.
  ``dev_params``: ((plan-ahead parameters, device), (rescue parameters, device))."""
  (ahead_params, ahead_dev), (rescue_params, rescue_dev) = dev_params
  lead, E = runtime.ahead_lead, ex.spec.effective_exec_len
  from_real = (state, info.z_real, jnp.asarray(action), ahead_key)  # rescue / late plan inputs
  if rescue:
    return sp.rescue_plan(ex, rescue_params, *jax.device_put(from_real, rescue_dev), task=task)
  if lead and int(state.index) == E - lead + 1 and not bool(info.nonfinite):
    return sp.plan_ahead_late(ex, ahead_params, *jax.device_put(from_real, ahead_dev),
                              lead=lead, task=task)
  if runtime.plan_ahead and not lead and (bool(info.replanned) or bool(info.adopted)):
    return sp.plan_ahead(ex, ahead_params, jax.device_put(state, ahead_dev),
                         jax.device_put(ahead_key, ahead_dev), task=task)
  return None


def run_episode(ex: sp.Executor, params: sp.ExecParams, env, key: jax.Array, seed: int, tau,
                runtime: Runtime = Runtime(), log_fn=None, online_state=None,
                task: Optional[int] = None) -> Dict[str, Any]:
  """One host-loop episode; per-step decision latency = observation in -> action out (wall
  clock, including any wait for a ready plan). Only the step is on that path: each step's key
  is split after the previous action is out, and a plan made ahead is copied to the step device
  when it is dispatched (an asynchronous copy that completes with the plan), not when it is
  offered. Steps whose input was non-finite (SAFE_ACTION emitted) are reported with their
  step index. With ``runtime.online`` the corrector adapts
  from ``online_state`` on (``online.init``) and the result has the new ``online_state``.
  ``task``: the task id of a multitask model (its env seen through ``envs.task_view``)."""
  runtime.check(ex)
  _, ahead_dev, rescue_dev = _devices()
  ahead_params = jax.device_put(params, ahead_dev) if runtime.plan_ahead else None
  rescue_params = (jax.device_put(params, rescue_dev)
                   if runtime.plan_ahead and ex.spec.on_reject == 'defer' else None)
  dev_params = ((ahead_params, ahead_dev), (rescue_params, rescue_dev))
  put = _committed
  obs, done, t, ret = env.reset(seed=seed), False, 0, 0.0
  state, empty, pending = put(sp.init_state(ex)), put(sp.no_ready(ex)), None
  step_params = put(params)
  E = ex.spec.effective_exec_len
  step_ms, replanned, bad_steps, ahead_calls, offered, rescue = [], [], [], 0, 0, False
  end_offered, end_adopted = 0, 0
  key, step_key = jax.random.split(key)
  while not done:
    start = time.perf_counter()
    # A plan-ahead is offered at its queue end, a rescue plan (on_reject 'defer') at once.
    use_ready = pending is not None and (rescue or int(state.index) >= E)
    ready = pending if use_ready else empty
    at_end = use_ready and not rescue   # a plan made ahead for this queue end
    action, state, info = sp.step(ex, step_params, state, jnp.asarray(obs), step_key, tau, t == 0,
                                  ready, task=task)
    action = np.asarray(action)
    step_ms.append(1e3 * (time.perf_counter() - start))
    replanned.append(bool(info.replanned))
    judged = not bool(info.nonfinite)   # a non-finite step never reaches the gate
    offered += int(use_ready and judged)
    end_offered += int(at_end and judged)
    end_adopted += int(at_end and bool(info.adopted))
    if use_ready or replanned[-1]:
      pending = None
    if online_state is not None:
      online_state = _label(ex, online_state, state, info, action, t)
      online_state = online_lib.maybe_update(runtime.online, ex.corrector, online_state,
                                             jax.random.fold_in(step_key, 2))
      params = params._replace(corrector=online_state.params)
      step_params = put(params)
    rescue = runtime.plan_ahead and bool(info.deferred)
    launched = _launch_next_plan(ex, runtime, dev_params, state, info,
                                 action, jax.random.fold_in(step_key, 1), rescue, task)
    if launched is not None:   # on the step device when it is done, not when it is offered
      pending, ahead_calls = put(launched), ahead_calls + 1
    if bool(info.nonfinite):
      pending, rescue = None, False     # made for a state the step did not keep
      bad_steps.append(t)
      if log_fn:
        log_fn(f'non-finite observation/latent/action at episode seed {seed}, step {t}: '
               'safe action emitted')
    key, step_key = jax.random.split(key)   # the next decision's key, off its timed path
    obs, reward, done, _ = env.step(action)
    ret, t = ret + reward, t + 1
    if runtime.period_ms > 0:
      time.sleep(max(0.0, runtime.period_ms / 1e3 - (time.perf_counter() - start)))
  return dict(seed=seed, ret=ret, planner_calls=int(state.planner_calls),
              corrections=int(state.corrections), fallbacks=int(state.fallbacks),
              nonfinite=int(state.nonfinite),
              adopted=int(state.adopted), deferred=int(state.deferred),
              ahead_calls=ahead_calls, ready_offered=offered, end_offered=end_offered,
              end_adopted=end_adopted,
              nonfinite_steps=bad_steps, online_state=online_state,
              step_ms=step_ms, replanned=replanned)


def _median(xs):
  return float(statistics.median(xs)) if xs else float('nan')


def _latency_stats(eps) -> Dict[str, float]:
  ms = np.array([m for e in eps for m in e['step_ms']])
  rep = np.array([r for e in eps for r in e['replanned']], bool)
  replan, correct = ms[rep].tolist(), ms[~rep].tolist()
  return dict(step_ms_mean=float(ms.mean()), step_ms_median=float(np.median(ms)),
              step_ms_p99=float(np.percentile(ms, 99)), step_ms_max=float(ms.max()),
              replan_ms_median=_median(replan), correct_ms_median=_median(correct),
              correct_to_replan_ratio=(_median(correct) / _median(replan)
                                       if correct and replan else float('nan')))


def _compile_programs(ex: sp.Executor, params: sp.ExecParams, key: jax.Array, tau,
                      runtime: Runtime, task: Optional[int]) -> None:
  """Compiles both cond branches of the step (and the plan-ahead / rescue programs the
  runtime uses) before anything is timed."""
  init = sp.init_state(ex)
  jax.block_until_ready(sp.step(ex, _committed(params), _committed(init),
                                jnp.zeros(ex.model.cfg.obs_dim), key, tau, True,
                                _committed(sp.no_ready(ex)), task=task)[0])
  if runtime.plan_ahead:
    _, ahead_dev, rescue_dev = _devices()
    z, a = jnp.zeros(ex.model.cfg.latent_dim), jnp.zeros(ex.model.cfg.action_dim)
    if runtime.ahead_lead:
      jax.block_until_ready(sp.plan_ahead_late(ex, *jax.device_put((params, init, z, a, key),
                                                                   ahead_dev),
                                               lead=runtime.ahead_lead, task=task))
    else:
      jax.block_until_ready(sp.plan_ahead(ex, jax.device_put(params, ahead_dev),
                                          jax.device_put(init, ahead_dev),
                                          jax.device_put(key, ahead_dev), task=task))
    if ex.spec.on_reject == 'defer':
      jax.block_until_ready(sp.rescue_plan(ex, *jax.device_put((params, init, z, a, key),
                                                               rescue_dev), task=task))


def evaluate_mode(ex: sp.Executor, params: sp.ExecParams, env, tau: float, episodes: int,
                  key: jax.Array, seed: int = 0, log_fn=None, tau_q: float = float('nan'),
                  runtime: Runtime = Runtime(), task: Optional[int] = None) -> Dict[str, Any]:
  """Runs ``episodes`` episodes of one executor on seeds seed, seed+1, ... (the same seeds and
  step keys for every mode: results pair per seed). Returns a summary row (see COLUMNS) with
  the per-episode ``returns`` list; ``reporting.add_robust_stats`` adds medians and pairing.
  ``task``: the task id of a multitask model."""
  runtime.check(ex)
  _compile_programs(ex, params, key, tau, runtime, task)
  eps = []
  ostate = None
  if runtime.online is not None:
    if ex.corrector is None:
      raise ValueError(f'online adaptation needs a corrector mode, got {ex.spec.mode!r}')
    ostate = online_lib.init(runtime.online, ex.corrector, params.corrector)
  for ep in range(episodes):
    eps.append(run_episode(ex, params, env, jax.random.fold_in(key, ep), seed + ep, tau,
                           runtime, log_fn, ostate, task))
    ostate = eps[-1]['online_state']
    if log_fn:
      log_fn(f'{label(ex, runtime)} tau={tau:.4g} episode {ep + 1}/{episodes}: return '
             f'{eps[-1]["ret"]:.1f}, {eps[-1]["planner_calls"]} planner calls '
             f'({eps[-1]["adopted"]} ready plans adopted)')
  returns = [e['ret'] for e in eps]
  mean = lambda k: float(np.mean([e[k] for e in eps]))
  lat = _latency_stats(eps)
  return dict(mode=ex.spec.mode, gate=ex.spec.gate, ahead=int(runtime.plan_ahead),
              ahead_lead=runtime.ahead_lead,
              fallback_planner=fallback_label(ex), on_reject=ex.spec.on_reject,
              deferred=mean('deferred'),
              online=int(runtime.online is not None),
              online_labels=int(ostate.count) if ostate is not None else 0,
              online_updates=int(ostate.updates) if ostate is not None else 0,
              tau=float(tau), tau_q=float(tau_q), exec_len=ex.spec.effective_exec_len,
              horizon=ex.planner.horizon, episodes=episodes, returns=returns,
              seeds=[e['seed'] for e in eps], return_mean=float(np.mean(returns)),
              return_std=float(np.std(returns)), planner_calls=mean('planner_calls'),
              ahead_calls=mean('ahead_calls'), adopted=mean('adopted'),
              ready_accept=(sum(e['adopted'] for e in eps) /
                            max(sum(e['ready_offered'] for e in eps), 1)),
              end_accept=(sum(e['end_adopted'] for e in eps) / sum(e['end_offered'] for e in eps)
                          if any(e['end_offered'] for e in eps) else float('nan')),
              corrections=mean('corrections'), fallbacks=mean('fallbacks'),
              nonfinite=float(sum(e['nonfinite'] for e in eps)),
              p99_to_plan=lat['step_ms_p99'] / lat['replan_ms_median'],
              period_ms=runtime.period_ms, **lat)


def fallback_label(ex: sp.Executor) -> str:
  """The fallback planner's settings that differ from the planner's ('' when none), e.g.
  'iterations=1,num_samples=128'."""
  if ex.fallback_planner is None:
    return ''
  a, b = dataclasses.asdict(ex.planner), dataclasses.asdict(ex.fallback_planner)
  return ','.join(f'{k}={b[k]}' for k in b if b[k] != a[k]) or 'same'


def label(ex: sp.Executor, runtime: Runtime = Runtime()) -> str:
  """'mlp H=3', 'mlp+learned H=3', 'mlp+ahead H=3', 'mlp+ahead+fallback(1x128) H=3'
  (``reporting.variant`` of the row this executor produces)."""
  row = dict(mode=ex.spec.mode, gate=ex.spec.gate, ahead=int(runtime.plan_ahead),
             ahead_lead=runtime.ahead_lead, fallback_planner=fallback_label(ex),
             online=int(runtime.online is not None), on_reject=ex.spec.on_reject)
  return f'{reporting.variant(row)} H={ex.spec.effective_exec_len}'


# Per-episode columns: returns and (files written from session 14 on) the episode seeds.
PER_EPISODE_COLUMNS = ('returns_per_seed', 'seeds_per_episode')


def _add_per_episode_columns(rows: List[Dict[str, Any]]) -> None:
  for r in rows:
    r['returns_per_seed'] = ' '.join(f'{x:.1f}' for x in r['returns'])
    r['seeds_per_episode'] = (' '.join(str(int(s)) for s in r['seeds'])
                              if r.get('seeds') is not None else '')


def check_same_seeds(named: Sequence[Tuple[str, Optional[Sequence[int]]]]) -> None:
  """Raises if two of the (name, episode seeds) pairs were evaluated on different seeds;
  None (a file from before the seeds were recorded) is not checked."""
  known = [(n, list(s)) for n, s in named if s is not None]
  for name, seeds in known[1:]:
    if seeds != known[0][1]:
      raise ValueError(f'{name} was evaluated on seeds {seeds}, {known[0][0]} on '
                       f'{known[0][1]}: not paired')


def _joined_seeds(rows: Sequence[Dict[str, Any]]) -> Optional[List[int]]:
  """The episode seeds of rows whose episodes are concatenated (None if any row lacks them)."""
  if any(r['seeds'] is None for r in rows):
    return None
  return [x for r in rows for x in r['seeds']]


def write_outputs(rows: List[Dict[str, Any]], workdir: str, name: str = 'evaluation',
                  title: str = '') -> Dict[str, str]:
  """CSV (all columns + per-episode returns), markdown (short columns) and the labelled
  return-vs-calls plot. Adds robust and paired statistics to ``rows`` first."""
  reporting.add_robust_stats(rows)
  os.makedirs(workdir, exist_ok=True)
  paths = dict(csv=os.path.join(workdir, f'{name}.csv'), md=os.path.join(workdir, f'{name}.md'),
               png=os.path.join(workdir, f'{name}.png'))
  _add_per_episode_columns(rows)
  reporting.write_csv(rows, paths['csv'], COLUMNS + PER_EPISODE_COLUMNS)
  with open(paths['md'], 'w') as f:
    f.write(reporting.markdown_table(rows, SHORT_COLUMNS))
  reporting.plot_return_vs_calls(rows, paths['png'], title=title)
  return paths


class Point(NamedTuple):
  """One evaluated configuration: mode, execution length, gate threshold tau and its quantile
  of the mismatch distribution (norm gate), gate kind and plan-ahead."""
  mode: str
  exec_len: int
  tau: float
  tau_q: float
  gate: str = 'norm'
  plan_ahead: bool = False
  online: bool = False
  fallback: Tuple[Tuple[str, Any], ...] = ()  # planner overrides of the fallback planner
  on_reject: str = 'replan'                   # SpecConfig.on_reject ('defer' needs plan_ahead)
  ahead_lead: int = 0                         # Runtime.ahead_lead (needs plan_ahead)


def grid(blocks: Sequence[Dict[str, Any]], quantiles: Optional[Sequence[float]],
         baseline: bool = True) -> List[Point]:
  """Expands blocks ``{modes, exec_lens, taus, tau_quantiles, gate, plan_ahead, online,
  fallback_planner, on_reject, ahead_lead}`` (fallback_planner: planner overrides of
  ``Executor.fallback_planner``; on_reject: ``SpecConfig.on_reject``, 'defer' only with
  plan_ahead; ahead_lead: ``Runtime.ahead_lead``, only with plan_ahead, <= every exec_len)
  into points
  (baseline first, once, duplicates removed). For gate='norm' quantile taus are resolved on
  the export's stored mismatch distribution ``quantiles`` (``reporting.resolve_taus``) and
  tau = inf means never verify; for gate='learned' taus are rejection probabilities.
  ``baseline=False`` leaves the baseline out (a later pass on the same seeds, merged with
  ``combine``, pairs with the baseline of an earlier pass)."""
  points = [Point('baseline', 1, float('inf'), float('nan'))] if baseline else []
  for b in blocks:
    gate, ahead, onl = (b.get('gate', 'norm'), bool(b.get('plan_ahead', False)),
                        bool(b.get('online', False)))
    fallback = tuple(sorted(dict(b.get('fallback_planner', {}) or {}).items()))
    on_reject = b.get('on_reject', 'replan')
    if on_reject == 'defer' and not ahead:
      raise ValueError("on_reject='defer' needs plan_ahead=True (its rescue plans are made "
                       'ahead by the host loop)')
    lead = int(b.get('ahead_lead', 0))
    if lead and (not ahead or not 0 < lead <= min(b['exec_lens'], default=lead)):
      raise ValueError(f'ahead_lead {lead} needs plan_ahead=True and 1 <= ahead_lead <= every '
                       f"exec_len, got exec_lens {tuple(b['exec_lens'])}")
    if gate == 'norm':
      taus = reporting.resolve_taus(tuple(b.get('taus', ())), tuple(b.get('tau_quantiles', ())),
                                    quantiles)
    else:
      taus = [(float(x), float('nan')) for x in b.get('taus', ())]
    for mode in b['modes']:
      if mode == 'baseline':
        continue
      for h in b['exec_lens']:
        for tau, tau_q in taus:
          p = Point(mode, int(h), tau, tau_q, gate, ahead, onl, fallback, on_reject,
                    lead)
          if p not in points:
            points.append(p)
  return points


def executor_for(point: Point, model, base_planner, spec_planner, correctors: Dict[str, Any],
                 acceptance: Optional[Dict[str, Any]] = None):
  """(Executor, corrector params, acceptance params) of a point; ``correctors`` maps
  mode -> (Corrector, params), ``acceptance`` mode -> (AcceptanceHead, params)."""
  if corr_lib.needs_corrector(point.mode) and point.mode not in correctors:
    raise ValueError(f'mode {point.mode!r} needs a corrector; have {sorted(correctors)} '
                     '(run launch/distill.py)')
  acceptance = acceptance or {}
  if point.gate == 'learned' and point.mode not in acceptance:
    raise ValueError(f"gate 'learned' for mode {point.mode!r} needs an acceptance head; have "
                     f'{sorted(acceptance)} (run launch/distill.py with acceptance=True)')
  cor, cparams = correctors.get(point.mode, (None, None))
  head, hparams = acceptance.get(point.mode, (None, None)) if point.gate == 'learned' else (None,
                                                                                            None)
  pcfg = base_planner if point.mode == 'baseline' else spec_planner
  if point.exec_len > pcfg.horizon:
    raise ValueError(f'exec_len {point.exec_len} exceeds the planner horizon {pcfg.horizon}: '
                     'raise the speculative planner horizon')
  scfg = sp.SpecConfig(mode=point.mode, exec_len=point.exec_len, gate=point.gate,
                       history=cor.cfg.history if cor else 4, on_reject=point.on_reject)
  fallback = dataclasses.replace(pcfg, **dict(point.fallback)) if point.fallback else None
  return sp.Executor(model, pcfg, scfg, cor, head, fallback), cparams, hparams


def evaluate_grid(model, params, base_planner, spec_planner, correctors: Dict[str, Any], env,
                  points: Sequence[Point], episodes: int, key: jax.Array, seed: int,
                  log_fn=None, acceptance: Optional[Dict[str, Any]] = None,
                  period_ms: float = 0.0,
                  online: Optional[online_lib.OnlineConfig] = None,
                  task: Optional[int] = None) -> List[Dict[str, Any]]:
  """Evaluates every point on the same episode seeds: the baseline with ``base_planner`` (the
  horizon the model was trained with), speculative modes with ``spec_planner`` (whose horizon
  must be >= every exec_len). ``correctors`` / ``acceptance`` map mode -> (module, params);
  ``task``: the task id of a multitask model."""
  rows = []
  for p in points:
    ex, cparams, hparams = executor_for(p, model, base_planner, spec_planner, correctors,
                                        acceptance)
    rows.append(evaluate_mode(ex, sp.ExecParams(params, cparams, hparams), env, p.tau, episodes,
                              key, seed, log_fn=log_fn, tau_q=p.tau_q,
                              runtime=Runtime(p.plan_ahead, period_ms,
                                              (online or online_lib.OnlineConfig())
                                              if p.online else None, p.ahead_lead),
                              task=task))
  return rows


def run(cfg, export_dir: str, workdir: str):
  """The evaluation job behind launch/evaluate.py: loads the export (and its correctors,
  acceptance heads and stored mismatch distribution), evaluates ``grid(cfg.blocks)`` on
  ``cfg.episodes`` episodes from seed ``cfg.seed`` with the baseline planner as exported and
  the speculative planner with ``cfg.spec_planner`` overrides (default: as exported), writes
  the outputs. ``cfg.period_ms`` (optional) paces decisions in real time. Returns (rows, paths)."""
  from absl import logging
  from spec_jax import checkpoint
  from spec_jax import envs
  model, params, pcfg, cors, meta, heads = checkpoint.load_with_correctors(
      export_dir, with_acceptance=True)
  extra = meta['extra']
  base_pcfg = dataclasses.replace(pcfg, **dict(cfg.get('base_planner', {}) or {}))
  spec_pcfg = dataclasses.replace(pcfg, **dict(cfg.get('spec_planner', {}) or {}))
  env = envs.make(envs.export_backend(extra, cfg.get('backend', '')), extra['task'],
                  need=envs.HOST, action_repeat=extra['action_repeat'],
                  episode_length=cfg.get('episode_length', 0) or extra['episode_length'],
                  model_scale=dict(cfg.get('model_scale', {}) or {}) or None)
  from spec_jax.envs import task_view
  env, task = task_view.for_model(model, env, extra, cfg.get('task_id', -1))
  points = grid([dict(b) for b in cfg.blocks], extra.get('mismatch_quantiles'),
                baseline=cfg.get('baseline', True))
  logging.info('%d configurations x %d episodes (seeds %d..%d); devices %s', len(points),
               cfg.episodes, cfg.seed, cfg.seed + cfg.episodes - 1, jax.local_devices())
  title = f"{extra['task']} ({extra.get('env_step', '?')} env steps), {cfg.episodes} episodes"
  rows = []
  for i, p in enumerate(points):  # outputs rewritten after every point: nothing lost on a stop
    rows += evaluate_grid(model, params, base_pcfg, spec_pcfg, cors, env, [p], cfg.episodes,
                          jax.random.PRNGKey(cfg.seed), cfg.seed, log_fn=logging.info,
                          acceptance=heads, period_ms=float(cfg.get('period_ms', 0.0)),
                          online=online_lib.OnlineConfig(**dict(cfg.get('online', {}) or {})),
                          task=task)
    paths = write_outputs(rows, workdir, title=title)
    logging.info('point %d/%d done: %s', i + 1, len(points), reporting.point_label(rows[-1]))
  return rows, paths


def read_rows(path: str) -> List[Dict[str, Any]]:
  """Rows of an evaluation.csv with numbers parsed and per-seed ``returns`` restored."""
  import csv
  rows = []
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    missing = {'mode', 'horizon', 'exec_len', 'returns_per_seed'} - set(reader.fieldnames or ())
    if missing:
      raise ValueError(f'{path} is not an evaluation file (no column {sorted(missing)})')
    for r in reader:
      row = {}
      for k, v in r.items():
        try:
          row[k] = float(v) if k not in ('mode', 'gate', 'on_reject') else v
        except (TypeError, ValueError):
          row[k] = v
      row['returns'] = [float(x) for x in r['returns_per_seed'].split()]
      seeds = r.get('seeds_per_episode') or ''   # blank or absent in older files
      row['seeds'] = [int(float(x)) for x in seeds.split()] if seeds else None
      row.pop('seeds_per_episode', None)
      row['exec_len'], row['horizon'] = int(row['exec_len']), int(row['horizon'])
      row.setdefault('gate', 'norm')  # files written before gates existed
      row['ahead'] = int(row.get('ahead') or 0)
      row['online'] = int(row.get('online') or 0)
      row['ahead_lead'] = int(row.get('ahead_lead') or 0)  # files from before ahead_lead
      row['on_reject'] = row.get('on_reject') or 'replan'  # files from before deferral existed
      rows.append(row)
  return rows


def _point_key(r: Dict[str, Any]) -> tuple:
  """What makes two rows the same evaluated configuration."""
  return (r['mode'], r['gate'], r['ahead'], r['online'], r['exec_len'], r['tau'], r['horizon'],
          r.get('fallback_planner') or '', r.get('on_reject') or 'replan', r['ahead_lead'])


# Per-episode means that pool as episode-weighted means over seed sets (end_accept and
# ready_accept are per-set fractions: their pooled value weights each set by its episodes),
# over the sets where the value is finite (files written before a column existed have none).
POOLED_MEANS = ('planner_calls', 'ahead_calls', 'adopted', 'ready_accept', 'corrections',
                'fallbacks', 'deferred', 'end_accept')
POOLED_SUMS = ('nonfinite',)   # totals over a set's episodes


def _seed_set(path: str, reference_horizon: int):
  """One evaluation file's (rows by configuration, baseline row); checks the pairing."""
  rows = {}
  for r in read_rows(path):
    if r['mode'] != 'baseline' or r['horizon'] == reference_horizon:  # other-horizon baselines
      rows.setdefault(_point_key(r), r)                                # are left out
  base = next((r for r in rows.values() if r['mode'] == 'baseline'), None)
  if base is None:
    raise ValueError(f'no baseline with horizon {reference_horizon} in {path}')
  check_same_seeds([(f"{path} ({r['mode']})", r['seeds']) for r in rows.values()])
  short = [k for k, r in rows.items() if len(r['returns']) != len(base['returns'])]
  if short:
    raise ValueError(f'{path}: rows {short} have another episode count than the baseline '
                     '(not paired)')
  return rows, base


def pool(paths: Sequence[str], workdir: str, reference_horizon: int, title: str = '',
         log_fn=None):
  """Pools evaluations of DIFFERENT seed sets, each with its own baseline (planned with
  ``reference_horizon``): a configuration present in every file gets its per-seed returns
  concatenated in file order and its statistics recomputed, paired seed by seed with the
  concatenated baseline. ``POOLED_MEANS`` become episode-weighted means, ``POOLED_SUMS``
  totals; latency quantiles do not pool and are left blank. Configurations missing from some
  file are dropped and named through ``log_fn``; two files with the same baseline returns
  (the same seed set twice) are refused. Returns (rows, paths)."""
  sets, bases = zip(*[_seed_set(p, reference_horizon) for p in paths])
  if len({tuple(b['returns']) for b in bases}) < len(bases):
    raise ValueError(f'two of {list(paths)} have the same baseline returns: the same seed set '
                     'cannot be pooled with itself')
  known = [b['seeds'] for b in bases if b['seeds'] is not None]
  if len({x for s in known for x in s}) < sum(len(s) for s in known):
    raise ValueError(f'{list(paths)} share episode seeds: pooled episodes must be distinct')
  pooled, dropped = [], []
  for key, first in sets[0].items():
    if not all(key in s for s in sets):
      dropped.append(key)
      continue
    group = [s[key] for s in sets]
    n = np.array([len(r['returns']) for r in group], np.float64)
    row = {k: first[k] for k in ('mode', 'gate', 'ahead', 'online', 'tau', 'tau_q', 'exec_len',
                                 'horizon', 'fallback_planner', 'on_reject', 'ahead_lead')
           if k in first}
    row.update(returns=[x for r in group for x in r['returns']], episodes=int(n.sum()),
               seeds=_joined_seeds(group))
    for k in POOLED_MEANS + POOLED_SUMS:
      vals = np.array([r[k] if isinstance(r.get(k), float) else np.nan for r in group])
      ok = np.isfinite(vals)
      if not ok.any():
        row[k] = float('nan')
      elif k in POOLED_SUMS:
        row[k] = float(vals[ok].sum())
      else:
        row[k] = float(np.dot(vals[ok], n[ok]) / n[ok].sum())
    pooled.append(row)
  dropped += [k for s in sets[1:] for k in s if k not in sets[0]]
  if dropped and log_fn:
    log_fn(f'not in every file, left out: {sorted(set(dropped), key=str)}')
  return pooled, write_outputs(pooled, workdir, title=title)


def combine(paths: Sequence[str], workdir: str, reference_horizon: int, title: str = '',
            labels: Sequence[str] = ()):
  """Merges evaluation passes made on the same seeds: the baseline planned with
  ``reference_horizon`` is THE baseline (paired statistics refer to it); baselines with other
  horizons are kept as 'baseline-h<H>' rows; a point present in several passes is kept once
  (the first). ``labels`` (one per path, '' for none): the speculative rows of a labelled pass
  become '<mode>-<label>' (passes on other exports, e.g. another corrector, at the same points).
  Returns (rows, paths)."""
  if labels and len(labels) != len(paths):
    raise ValueError(f'{len(labels)} labels for {len(paths)} evaluation files')
  rows, seen, named = [], set(), []
  for i, path in enumerate(paths):
    label = labels[i] if labels else ''
    for r in read_rows(path):
      named.append((f"{path} ({r['mode']})", r['seeds']))
      if r['mode'] == 'baseline' and r['horizon'] != reference_horizon:
        r['mode'] = f"baseline-h{r['horizon']}"
      elif label and not r['mode'].startswith('baseline'):
        r['mode'] = f"{r['mode']}-{label}"
      key = _point_key(r)
      if key not in seen:
        seen.add(key)
        rows.append(r)
  if not any(r['mode'] == 'baseline' for r in rows):
    raise ValueError(f'no baseline with horizon {reference_horizon} in {list(paths)}')
  check_same_seeds(named)
  rows.sort(key=lambda r: (r['mode'] != 'baseline', not r['mode'].startswith('baseline')))
  return rows, write_outputs(rows, workdir, title=title)


AGENT_COLUMNS = ('agent', 'evaluations', 'episodes', 'return_mean', 'return_std',
                 'return_median', 'return_q25', 'return_q75', 'failed', 'fail_below', 'ratio',
                 'ratio_lo', 'ratio_hi', 'diff_mean', 'diff_median')


def _agent_baseline(path: str) -> Dict[str, Any]:
  bases = [r for r in read_rows(path) if r['mode'] == 'baseline']
  if len(bases) != 1:
    raise ValueError(f'{path}: expected one baseline row, found {len(bases)}')
  return bases[0]


def compare_agents(arms: Sequence[Sequence[str]], labels: Sequence[str], workdir: str,
                   fail_below: Optional[float] = None):
  """Compares DIFFERENT agents (e.g. training variants) by their replan-every-step baselines
  evaluated on the same episode seeds. Each arm is a list of evaluation.csv files (one per
  training seed, in the same order in every arm); its per-seed baseline returns are
  concatenated, so arm k's episode i is paired with arm 0's episode i (same training-seed slot,
  same evaluation seed). The first arm is the reference of the paired statistics. With several
  files per arm the bootstrap CI resamples training seeds first (``paired_stats(groups=)``):
  episodes of one agent are not independent. The planner horizons, episode counts and (in
  files that record them) the evaluation seeds must match slot by slot.

  Args:
    arms: [K >= 2] lists of evaluation.csv paths, all of the same length F >= 1.
    labels: [K] distinct names of the arms.
    workdir: where agents.csv / agents.md are written.
    fail_below: an episode below it counts as failed (None: half the reference arm's median
      return, which must then be positive).
  Returns:
    (rows, paths): one row per arm (AGENT_COLUMNS) and the written files.
  """
  if len(arms) < 2 or len(labels) != len(arms) or len(set(labels)) != len(labels):
    raise ValueError(f'need >= 2 arms and one distinct label each, got {len(arms)} arms, '
                     f'labels {list(labels)}')
  if len({len(a) for a in arms}) != 1 or not arms[0]:
    raise ValueError(f'every arm needs as many evaluation files, >= 1: {[len(a) for a in arms]}')
  bases = [[_agent_baseline(p) for p in paths] for paths in arms]
  shape = {tuple((b['horizon'], len(b['returns'])) for b in arm) for arm in bases}
  if len(shape) != 1:
    raise ValueError(f'arms differ in (horizon, episodes) per evaluation file, not paired: '
                     f'{sorted(shape)}')
  for slot in range(len(arms[0])):
    check_same_seeds([(paths[slot], arm[slot]['seeds']) for paths, arm in zip(arms, bases)])
  rows = [dict(agent=label, evaluations=len(arm), returns=sum((b['returns'] for b in arm), []),
               seeds=_joined_seeds(arm))
          for label, arm in zip(labels, bases)]
  groups = np.repeat(np.arange(len(arms[0])), [len(b['returns']) for b in bases[0]])
  ref = rows[0]['returns']
  if fail_below is None:
    fail_below = 0.5 * float(np.median(ref))
    if fail_below <= 0:
      raise ValueError('the reference arm\'s median return is not positive: pass fail_below')
  for r in rows:
    r.update(reporting.return_stats(r['returns'], fail_below), fail_below=fail_below,
             episodes=len(r['returns']))
    r.update(reporting.paired_stats(r['returns'], ref,
                                    groups=groups if len(arms[0]) > 1 else None))
  return rows, _write_agent_rows(rows, workdir)


def _write_agent_rows(rows, workdir: str) -> Dict[str, str]:
  os.makedirs(workdir, exist_ok=True)
  out = dict(csv=os.path.join(workdir, 'agents.csv'), md=os.path.join(workdir, 'agents.md'))
  _add_per_episode_columns(rows)
  reporting.write_csv(rows, out['csv'], AGENT_COLUMNS + PER_EPISODE_COLUMNS)
  with open(out['md'], 'w') as f:
    f.write(reporting.markdown_table(rows, AGENT_COLUMNS))
  return out
