"""Corrector distillation from the replanning teacher.

Collection: roll the agent out with speculation (no correction, tau = inf, exec_len = the
planner horizon); at every step ALSO replan from the real observation (the teacher,
eval mode, its own warm start). At each speculative step k = 1..exec_len-1 record
(z_real, z_hat, a_spec, a_teacher, d, history, k). The executed action during speculation is
the teacher's with probability ``teacher_prob`` and the speculative one otherwise, so the
data covers the states that speculation visits without drifting far from the teacher's.

Training: a_corr = clip(a_spec + delta, -1, 1);
loss = MSE(a_corr, a_teacher) + lam * mean((a_corr - a_spec)^2); Adam 3e-4, batch 256; a
held-out split reports the corrected error next to the uncorrected one (a_spec vs teacher).
"""
import functools
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from spec_jax import acceptance as acc_lib
from spec_jax import correctors as corr_lib
from spec_jax import planner as planner_lib
from spec_jax import speculation as sp


class Dataset(NamedTuple):
  z_real: jax.Array      # [N, Z]
  z_hat: jax.Array       # [N, Z]
  a_spec: jax.Array      # [N, A]
  a_teacher: jax.Array   # [N, A]
  d: jax.Array           # [N]
  history: jax.Array     # [N, K, F]
  valid: jax.Array       # [N, K]
  k: jax.Array           # [N] steps into speculation
  episode: jax.Array     # [N] int32 teacher-rollout episode the tuple comes from


@functools.partial(jax.jit, static_argnames=('ex',))
def _collect_step(ex: sp.Executor, params: sp.ExecParams, state, teacher_pstate, obs, key, t0,
                  teacher_prob, task=None, ready=None):
  spec_key, teacher_key, coin_key = jax.random.split(key, 3)
  a_exec, state, info = sp.step(ex, params, state, obs, spec_key, jnp.inf, t0, ready, task=task)
  teacher, teacher_pstate = planner_lib.plan(ex.model, params.model, ex.planner, teacher_pstate,
                                             obs, teacher_key, t0, True, task=task)
  use_teacher = (~info.replanned) & (jax.random.uniform(coin_key) < teacher_prob)
  action = jnp.where(use_teacher, teacher.action, a_exec)
  return action, state, teacher_pstate, info, teacher.action


def collect(model, params, planner_cfg, env, episodes: int, key: jax.Array, history: int = 4,
            teacher_prob: float = 0.5, log_fn=None, corrector=None,
            env_for_episode: Optional[Callable[[int], Any]] = None,
            first_episode: int = 0, task: Optional[int] = None,
            pipelined: bool = False) -> Tuple[Dataset, Dict[str, float]]:
  """Rolls out ``episodes`` host-env episodes and returns (Dataset, stats).

  Args:
    pipelined: data for the pipelined executor (execution length 1, plan-ahead lead 1): every
      step's speculative action is the first action of a plan made from the one-step
      prediction d(z_real, executed action) of the previous step (``plan_ahead_late``), k = 0;
      False: open-loop queues of ``planner_cfg.horizon`` actions, k = 1..horizon-1.
    corrector: optional (Corrector, params): DAgger — while speculating, the executed action is
      the CORRECTED one (the learner's), still relabelled by the teacher; None: uncorrected.
    env_for_episode: optional ep -> env (e.g. randomised mass/friction per episode); default
      ``env`` for every episode.
    first_episode: id of the first episode (ids must stay unique when datasets are merged).
    task: the task id of a multitask model (its env seen through ``envs.task_view``).
  """
  cor, cparams = corrector if corrector is not None else (None, None)
  mode = cor.cfg.kind if cor is not None else 'spec'
  ex = sp.Executor(model, planner_cfg,
                   sp.SpecConfig(mode=mode, exec_len=1 if pipelined else planner_cfg.horizon,
                                 history=history), cor)
  xp = sp.ExecParams(params, cparams)
  rows, returns = [], []
  for ep in range(first_episode, first_episode + episodes):
    ep_env = env_for_episode(ep) if env_for_episode is not None else env
    obs, done, t, ret = ep_env.reset(), False, 0, 0.0
    state, ready = sp.init_state(ex), None
    teacher_pstate = planner_lib.init_state(planner_cfg, model.cfg.action_dim)
    while not done:
      key, step_key = jax.random.split(key)
      action, state, teacher_pstate, info, a_teacher = _collect_step(
          ex, xp, state, teacher_pstate, jnp.asarray(obs), step_key, t == 0, teacher_prob, task,
          ready)
      if pipelined:   # the next step's speculative plan, from this step's real latent
        ready = sp.plan_ahead_late(ex, xp, state, info.z_real, action,
                                   jax.random.fold_in(step_key, 1), lead=1, task=task)
      if bool(info.nonfinite):
        raise ValueError(f'non-finite observation or action in teacher rollout: episode {ep}, '
                         f'step {t}')
      if not bool(info.replanned):
        rows.append((info.z_real, info.z_hat, info.a_spec, a_teacher, info.d, state.history,
                     state.history_valid, info.k, jnp.int32(ep)))
      obs, reward, done, _ = ep_env.step(np.asarray(action))
      ret, t = ret + reward, t + 1
    returns.append(ret)
    if log_fn:
      log_fn(f'collect episode {ep + 1 - first_episode}/{episodes} ({mode}): return {ret:.1f}, '
             f'{len(rows)} tuples')
  if not rows:
    raise ValueError('no speculative steps collected (horizon 1?)')
  # Stack on the host: jnp.stack over ~10^4 device arrays compiles one concatenate with that
  # many operands (minutes at 12k tuples).
  rows = jax.device_get(rows)
  data = Dataset(*[jnp.asarray(np.stack([r[i] for r in rows]))
                   for i in range(len(Dataset._fields))])
  return data, dict(collect_return=float(np.mean(returns)), tuples=len(rows))


def merge(a: Dataset, b: Dataset) -> Dataset:
  """Concatenates two datasets (episode ids must not overlap)."""
  if np.intersect1d(np.asarray(a.episode), np.asarray(b.episode)).size:
    raise ValueError('datasets share episode ids: pass first_episode to collect')
  return jax.tree_util.tree_map(lambda x, y: jnp.concatenate([x, y]), a, b)


def randomised_scales(ranges: Dict[str, Any], seed: int, episode: int) -> Dict[str, float]:
  """Per-episode physics scales drawn uniformly from ``ranges`` ({'mass': (lo, hi), ...})."""
  rng = np.random.default_rng([seed, episode])
  out = {}
  for name, bounds in sorted(ranges.items()):
    lo, hi = (float(x) for x in bounds)
    if not 0 < lo <= hi:
      raise ValueError(f'randomise range for {name!r} must satisfy 0 < lo <= hi, got {bounds}')
    out[name] = float(rng.uniform(lo, hi))
  return out


def episode_envs(make: Callable[..., Any], ranges: Dict[str, Any], seed: int):
  """ep -> a host env with that episode's physics scales (``randomised_scales``) AND its own
  initial-state seed (seed + 1 + ep), or None when ``ranges`` is empty (one env for all).
  ``make(model_scale=, seed=)`` builds an env."""
  if not ranges:
    return None
  return lambda ep: make(model_scale=randomised_scales(ranges, seed, ep), seed=seed + 1 + ep)


def split(data: Dataset, holdout: float, key: jax.Array) -> Tuple[Dataset, Dataset]:
  """(train, held-out) split BY EPISODE: round(holdout * episodes) whole teacher episodes (at
  least one) are held out, so neighbouring steps of one episode never fall on both sides."""
  episodes = np.unique(np.asarray(data.episode))
  if not 0.0 < holdout < 1.0 or len(episodes) < 2:
    raise ValueError(f'need 0 < holdout < 1 and tuples from at least 2 episodes, got {holdout}, '
                     f'{len(episodes)} episode(s)')
  perm = np.asarray(jax.random.permutation(key, len(episodes)))
  n_test = min(max(1, int(round(holdout * len(episodes)))), len(episodes) - 1)
  test_eps = episodes[perm[:n_test]]
  is_test = np.isin(np.asarray(data.episode), test_eps)
  take = lambda mask: jax.tree_util.tree_map(lambda x: x[np.flatnonzero(mask)], data)
  return take(~is_test), take(is_test)


def loss_fn(params, corrector: corr_lib.Corrector, batch: Dataset, lam: float):
  a_corr = corrector.correct(params, batch.history, batch.valid, batch.a_spec)
  mse = jnp.mean(jnp.square(a_corr - batch.a_teacher))
  reg = jnp.mean(jnp.square(a_corr - batch.a_spec))
  return mse + lam * reg, mse


@functools.partial(jax.jit, static_argnames=('corrector', 'steps', 'batch_size', 'lam', 'lr'))
def _train_epoch(corrector, params, opt_state, data: Dataset, key, steps: int, batch_size: int,
                 lam: float, lr: float):
  opt = optax.adam(lr)
  n = data.d.shape[0]

  def body(carry, k):
    p, o = carry
    idx = jax.random.randint(k, (batch_size,), 0, n)
    batch = jax.tree_util.tree_map(lambda x: x[idx], data)
    (loss, mse), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, corrector, batch, lam)
    updates, o = opt.update(grads, o, p)
    return (optax.apply_updates(p, updates), o), (loss, mse)

  (params, opt_state), (loss, mse) = jax.lax.scan(body, (params, opt_state),
                                                  jax.random.split(key, steps))
  return params, opt_state, loss.mean(), mse.mean()


def evaluate(corrector, params, data: Dataset) -> Dict[str, float]:
  a_corr = corrector.correct(params, data.history, data.valid, data.a_spec)
  return dict(mse_corrected=float(jnp.mean(jnp.square(a_corr - data.a_teacher))),
              mse_uncorrected=float(jnp.mean(jnp.square(data.a_spec - data.a_teacher))))


def train_test_split(data: Dataset, holdout: float, key: jax.Array) -> Tuple[Dataset, Dataset]:
  """The (train, held-out) split ``train`` makes with ``key``."""
  return split(data, holdout, jax.random.split(key, 3)[0])


def train(corrector: corr_lib.Corrector, data: Dataset, key: jax.Array, steps: int = 5000,
          batch_size: int = 256, lr: float = 3e-4, lam: float = 0.1, holdout: float = 0.1,
          epoch: int = 500, log_fn=None, keep_best: bool = False):
  """Trains ``corrector`` on ``data``. Returns (params, metrics with held-out errors).

  keep_best: return the parameters of the epoch with the lowest held-out corrected MSE (early
  stopping on the held-out EPISODES; the held-out metrics then describe the selected epoch
  and are optimistic by that selection), not the last epoch's."""
  _, init_key, train_key = jax.random.split(key, 3)
  train_set, test_set = train_test_split(data, holdout, key)
  params = corrector.init(init_key)
  opt_state = optax.adam(lr).init(params)
  history, best = [], None
  for i in range(max(steps // epoch, 1)):
    train_key, epoch_key = jax.random.split(train_key)
    params, opt_state, loss, mse = _train_epoch(corrector, params, opt_state, train_set,
                                                epoch_key, epoch, batch_size, lam, lr)
    held = evaluate(corrector, params, test_set)
    history.append(dict(step=(i + 1) * epoch, train_loss=float(loss), train_mse=float(mse), **held))
    if log_fn:
      log_fn(f'{corrector.cfg.kind} step {(i + 1) * epoch}: train loss {float(loss):.5f} | '
             f'held-out mse {held["mse_corrected"]:.5f} (uncorrected {held["mse_uncorrected"]:.5f})')
    if (best is None or not np.isfinite(best[1]['mse_corrected'])
        or held['mse_corrected'] < best[1]['mse_corrected']):
      best = (params, history[-1])
  params, last = best if keep_best else (params, history[-1])
  metrics = dict(last, train_size=int(train_set.d.shape[0]),
                 test_size=int(test_set.d.shape[0]), curve=history)
  return params, metrics


def executed_action_errors(corrector: Optional[corr_lib.Corrector], cparams,
                           data: Dataset) -> jax.Array:
  """||a_exec - a_teacher||_2 [N], a_exec the corrected action (a_spec when corrector is None)."""
  a = data.a_spec if corrector is None else corrector.correct(cparams, data.history, data.valid,
                                                              data.a_spec)
  return jnp.linalg.norm(a - data.a_teacher, axis=-1)


def train_acceptance(head: acc_lib.AcceptanceHead, corrector, cparams, data: Dataset,
                     key: jax.Array, holdout: float = 0.1, steps: int = 3000,
                     eps: Optional[float] = None):
  """Acceptance head for one executor mode: labels reject = error of the executed action >
  eps (default: the median training error), split by episode like the correctors.
  Returns (params, metrics: held-out accuracy / Brier / AUC, eps)."""
  split_key, fit_key, val_key = jax.random.split(key, 3)
  train_set, test_set = split(data, holdout, split_key)
  fit_set, val_set = split(train_set, 0.2, val_key)   # whole episodes for early stopping
  errors = lambda d: np.asarray(executed_action_errors(corrector, cparams, d))
  _, eps = acc_lib.make_labels(errors(train_set), eps)
  lab = lambda d: acc_lib.Labelled(d.history[:, -1], d.d, d.k,
                                   jnp.asarray(acc_lib.make_labels(errors(d), eps)[0]))
  params, metrics = acc_lib.train(head, lab(fit_set), lab(test_set), fit_key, steps,
                                  val_set=lab(val_set))
  return params, dict(metrics, eps=eps)


def _train_kinds(cfg, model, data, key, log_fn):
  trained, report = {}, {}
  for kind in tuple(cfg.kinds):
    cor = corr_lib.Corrector(corr_lib.CorrectorConfig(kind=kind, hidden=cfg.hidden,
                                                      history=cfg.history),
                             model.cfg.latent_dim, model.cfg.action_dim)
    cparams, metrics = train(cor, data, jax.random.fold_in(key, 1), cfg.steps, cfg.batch_size,
                             cfg.lr, cfg.lam, cfg.holdout, log_fn=log_fn,
                             keep_best=cfg.get('keep_best', False))
    trained[kind], report[kind] = (cor, cparams), metrics
  return trained, report


def _train_heads(cfg, model, pcfg, correctors, data, key, log_fn):
  heads = {}
  for mode in ('spec',) + tuple(correctors):
    cor, cparams = correctors.get(mode, (None, None))
    head = acc_lib.AcceptanceHead(model.cfg.latent_dim, model.cfg.action_dim, pcfg.horizon)
    hp, metrics = train_acceptance(head, cor, cparams, data, jax.random.fold_in(key, 2),
                                   cfg.holdout, cfg.get('acceptance_steps', 3000))
    heads[mode] = (head, hp, metrics)
    log_fn(f'acceptance head for {mode}: held-out AUC {metrics["auc"]:.3f}, accuracy '
           f'{metrics["accuracy"]:.3f} (eps {metrics["eps"]:.4f})')
  return heads


def load_dataset(path: str) -> Dataset:
  """A Dataset saved by ``run`` (workdir/dataset.npz); clear errors for missing fields."""
  with np.load(path) as f:
    missing = [k for k in Dataset._fields if k not in f.files]
    if missing:
      raise ValueError(f'{path} is not a distillation dataset: missing {missing}')
    return Dataset(*[jnp.asarray(f[k]) for k in Dataset._fields])


def _dagger(cfg, model, params, pcfg, env, env_for, data, trained, report, key, log_fn,
            task=None):
  """``cfg.dagger_rounds`` rounds per trained corrector: roll out the CORRECTED executor
  (``cfg.dagger_episodes`` episodes), relabel the visited states with the teacher, add them to
  that corrector's data and retrain it from scratch. Held-out metrics per round in the report."""
  rounds, episodes = int(cfg.get('dagger_rounds', 0)), int(cfg.get('dagger_episodes', 4))
  for kind in list(trained) if rounds else []:
    kind_data, history = data, []
    for r in range(rounds):
      new, st = collect(model, params, pcfg, env, episodes, jax.random.fold_in(key, 100 + r),
                        cfg.history, cfg.teacher_prob, log_fn=log_fn, corrector=trained[kind],
                        env_for_episode=env_for,
                        first_episode=int(np.max(np.asarray(kind_data.episode))) + 1, task=task,
                        pipelined=cfg.get('pipelined', False))
      kind_data = merge(kind_data, new)
      cor = trained[kind][0]
      cparams, metrics = train(cor, kind_data, jax.random.fold_in(key, 1), cfg.steps,
                               cfg.batch_size, cfg.lr, cfg.lam, cfg.holdout, log_fn=log_fn,
                               keep_best=cfg.get('keep_best', False))
      trained[kind] = (cor, cparams)
      history.append(dict(round=r + 1, tuples=int(kind_data.d.shape[0]),
                          collect_return=st['collect_return'],
                          **{k: v for k, v in metrics.items() if k != 'curve'}))
    report[kind]['dagger'] = history
  return trained


def run(cfg, export_dir: str, workdir: str) -> Dict[str, Any]:
  """The distillation job: load an export, collect teacher rollouts (with ``cfg.planner``
  overrides, e.g. a longer horizon for deeper speculation), train ``cfg.kinds`` correctors
  (correctors already in the export and not retrained are kept), with ``cfg.acceptance`` train
  an acceptance head per mode, store the mismatch distribution (101 percentiles of d at
  speculative steps, for task-relative tau) and export everything to ``workdir/export``.
  Robustness: ``cfg.randomize`` ({'mass': (lo, hi), 'friction': (lo, hi)}) draws physics
  scales per teacher episode; ``cfg.dagger_rounds`` adds DAgger rounds (``_dagger``).
  Returns the report (also written to ``workdir/distill_metrics.json``)."""
  import dataclasses
  import json
  import os
  from absl import logging
  from spec_jax import checkpoint
  from spec_jax import reporting
  from spec_jax import envs
  model, params, pcfg, kept, meta = checkpoint.load_with_correctors(export_dir)
  pcfg = dataclasses.replace(pcfg, **dict(cfg.get('planner', {}) or {}))
  extra = dict(meta['extra'])
  from spec_jax.envs import task_view
  task = task_view.task_of(model, extra, cfg.get('task_id', -1))
  make_base = functools.partial(envs.make, envs.export_backend(extra, cfg.get('backend', '')),
                                extra['task'], need=envs.HOST,
                                action_repeat=extra['action_repeat'],
                                episode_length=extra['episode_length'])
  make = lambda **kw: task_view.view(model, make_base(**kw))
  env = make(seed=cfg.seed)
  # e.g. {'mass': (0.7, 1.3)}: robust data, each episode with its own scales and start
  env_for = episode_envs(make, dict(cfg.get('randomize', {}) or {}), cfg.seed)
  key = jax.random.PRNGKey(cfg.seed)
  os.makedirs(workdir, exist_ok=True)
  pipelined = bool(cfg.get('pipelined', False))
  if cfg.get('dataset', ''):   # reuse the teacher rollouts of an earlier run
    data = load_dataset(cfg.dataset)
    only_k0 = bool(np.all(np.asarray(data.k) == 0))
    if pipelined != only_k0:
      raise ValueError(f'{cfg.dataset}: pipelined={pipelined} but the dataset holds ' +
                       ('only k = 0 (pipelined) tuples' if only_k0 else
                        'open-loop tuples (k >= 1)'))
    stats = dict(collect_return=float('nan'), tuples=int(data.d.shape[0]), dataset=cfg.dataset)
  else:
    data, stats = collect(model, params, pcfg, env, cfg.episodes, key, cfg.history,
                          cfg.teacher_prob, log_fn=logging.info, env_for_episode=env_for,
                          task=task, pipelined=pipelined)
    np.savez_compressed(os.path.join(workdir, 'dataset.npz'),
                        **{k: np.asarray(v) for k, v in data._asdict().items()})
  trained, report = _train_kinds(cfg, model, data, key, logging.info)
  trained = _dagger(cfg, model, params, pcfg, env, env_for, data, trained, report, key,
                    logging.info, task)
  report.update(collect=stats, kinds=tuple(cfg.kinds), kept=sorted(set(kept) - set(trained)),
                planner=dataclasses.asdict(pcfg))
  correctors = {**kept, **trained}
  heads = (_train_heads(cfg, model, pcfg, correctors, data, key, logging.info)
           if cfg.get('acceptance', False) else None)
  if heads:
    report['acceptance'] = {m: h[2] for m, h in heads.items()}
  if trained or 'mismatch_quantiles' not in extra:  # else keep the correctors' distribution
    extra['mismatch_quantiles'] = reporting.mismatch_quantiles(np.asarray(data.d))
  extra['distill'] = dict(episodes=cfg.episodes, tuples=stats['tuples'], seed=cfg.seed,
                         pipelined=pipelined,
                         keep_best=bool(cfg.get('keep_best', False)),
                         dataset=cfg.get('dataset', ''))
  out = checkpoint.export_with_correctors(os.path.join(workdir, 'export'), model, params, pcfg,
                                          correctors, extra=extra,
                                          storage_dtype=cfg.get('storage_dtype', 'float32'),
                                          acceptance=heads)
  with open(os.path.join(workdir, 'distill_metrics.json'), 'w') as f:
    json.dump(report, f, indent=2)
  logging.info('exported world model + correctors to %s', out)
  return report
