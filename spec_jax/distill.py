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
from typing import Any, Dict, NamedTuple, Optional, Tuple

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
def _collect_step(ex: sp.Executor, params, state, teacher_pstate, obs, key, t0, teacher_prob):
  spec_key, teacher_key, coin_key = jax.random.split(key, 3)
  a_spec_exec, state, info = sp.step(ex, sp.ExecParams(params), state, obs, spec_key, jnp.inf, t0)
  teacher, teacher_pstate = planner_lib.plan(ex.model, params, ex.planner, teacher_pstate, obs,
                                             teacher_key, t0, True)
  use_teacher = (~info.replanned) & (jax.random.uniform(coin_key) < teacher_prob)
  action = jnp.where(use_teacher, teacher.action, a_spec_exec)
  return action, state, teacher_pstate, info, teacher.action


def collect(model, params, planner_cfg, env, episodes: int, key: jax.Array, history: int = 4,
            teacher_prob: float = 0.5, log_fn=None) -> Tuple[Dataset, Dict[str, float]]:
  """Rolls out ``episodes`` dm_control episodes and returns (Dataset, stats)."""
  ex = sp.Executor(model, planner_cfg,
                   sp.SpecConfig(mode='spec', exec_len=planner_cfg.horizon, history=history))
  rows, returns = [], []
  for ep in range(episodes):
    obs, done, t, ret = env.reset(), False, 0, 0.0
    state = sp.init_state(ex)
    teacher_pstate = planner_lib.init_state(planner_cfg, model.cfg.action_dim)
    while not done:
      key, step_key = jax.random.split(key)
      action, state, teacher_pstate, info, a_teacher = _collect_step(
          ex, params, state, teacher_pstate, jnp.asarray(obs), step_key, t == 0, teacher_prob)
      if bool(info.nonfinite):
        raise ValueError(f'non-finite observation or action in teacher rollout: episode {ep}, '
                         f'step {t}')
      if not bool(info.replanned):
        rows.append((info.z_real, info.z_hat, info.a_spec, a_teacher, info.d, state.history,
                     state.history_valid, info.k, jnp.int32(ep)))
      obs, reward, done, _ = env.step(np.asarray(action))
      ret, t = ret + reward, t + 1
    returns.append(ret)
    if log_fn:
      log_fn(f'collect episode {ep + 1}/{episodes}: return {ret:.1f}, {len(rows)} tuples')
  if not rows:
    raise ValueError('no speculative steps collected (horizon 1?)')
  data = Dataset(*[jnp.stack([r[i] for r in rows]) for i in range(len(Dataset._fields))])
  return data, dict(collect_return=float(np.mean(returns)), tuples=len(rows))


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


def train(corrector: corr_lib.Corrector, data: Dataset, key: jax.Array, steps: int = 5000,
          batch_size: int = 256, lr: float = 3e-4, lam: float = 0.1, holdout: float = 0.1,
          epoch: int = 500, log_fn=None):
  """Trains ``corrector`` on ``data``. Returns (params, metrics with held-out errors)."""
  split_key, init_key, train_key = jax.random.split(key, 3)
  train_set, test_set = split(data, holdout, split_key)
  params = corrector.init(init_key)
  opt_state = optax.adam(lr).init(params)
  history = []
  for i in range(max(steps // epoch, 1)):
    train_key, epoch_key = jax.random.split(train_key)
    params, opt_state, loss, mse = _train_epoch(corrector, params, opt_state, train_set,
                                                epoch_key, epoch, batch_size, lam, lr)
    held = evaluate(corrector, params, test_set)
    history.append(dict(step=(i + 1) * epoch, train_loss=float(loss), train_mse=float(mse), **held))
    if log_fn:
      log_fn(f'{corrector.cfg.kind} step {(i + 1) * epoch}: train loss {float(loss):.5f} | '
             f'held-out mse {held["mse_corrected"]:.5f} (uncorrected {held["mse_uncorrected"]:.5f})')
  metrics = dict(history[-1], train_size=int(train_set.d.shape[0]),
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
  split_key, fit_key = jax.random.split(key)
  train_set, test_set = split(data, holdout, split_key)
  y_train, eps = acc_lib.make_labels(np.asarray(executed_action_errors(corrector, cparams,
                                                                       train_set)), eps)
  y_test, _ = acc_lib.make_labels(np.asarray(executed_action_errors(corrector, cparams,
                                                                    test_set)), eps)
  lab = lambda d, y: acc_lib.Labelled(d.history[:, -1], d.d, d.k, jnp.asarray(y))
  params, metrics = acc_lib.train(head, lab(train_set, y_train), lab(test_set, y_test), fit_key,
                                  steps)
  return params, dict(metrics, eps=eps)


def _train_kinds(cfg, model, data, key, log_fn):
  trained, report = {}, {}
  for kind in tuple(cfg.kinds):
    cor = corr_lib.Corrector(corr_lib.CorrectorConfig(kind=kind, hidden=cfg.hidden,
                                                      history=cfg.history),
                             model.cfg.latent_dim, model.cfg.action_dim)
    cparams, metrics = train(cor, data, jax.random.fold_in(key, 1), cfg.steps, cfg.batch_size,
                             cfg.lr, cfg.lam, cfg.holdout, log_fn=log_fn)
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


def run(cfg, export_dir: str, workdir: str) -> Dict[str, Any]:
  """The distillation job: load an export, collect teacher rollouts (with ``cfg.planner``
  overrides, e.g. a longer horizon for deeper speculation), train ``cfg.kinds`` correctors
  (correctors already in the export and not retrained are kept), with ``cfg.acceptance`` train
  an acceptance head per mode, store the mismatch distribution (101 percentiles of d at
  speculative steps, for task-relative tau) and export everything to ``workdir/export``.
  Returns the report (also written to ``workdir/distill_metrics.json``)."""
  import dataclasses
  import json
  import os
  from absl import logging
  from spec_jax import checkpoint
  from spec_jax import logs
  from spec_jax import reporting
  from spec_jax import envs
  logs.setup()
  model, params, pcfg, kept, meta = checkpoint.load_with_correctors(export_dir)
  pcfg = dataclasses.replace(pcfg, **dict(cfg.get('planner', {}) or {}))
  extra = dict(meta['extra'])
  env = envs.make(envs.export_backend(extra, cfg.get('backend', '')), extra['task'],
                  need=envs.HOST, seed=cfg.seed, action_repeat=extra['action_repeat'],
                  episode_length=extra['episode_length'])
  key = jax.random.PRNGKey(cfg.seed)
  data, stats = collect(model, params, pcfg, env, cfg.episodes, key, cfg.history,
                        cfg.teacher_prob, log_fn=logging.info)
  trained, report = _train_kinds(cfg, model, data, key, logging.info)
  report.update(collect=stats, kinds=tuple(cfg.kinds), kept=sorted(set(kept) - set(trained)),
                planner=dataclasses.asdict(pcfg))
  correctors = {**kept, **trained}
  heads = (_train_heads(cfg, model, pcfg, correctors, data, key, logging.info)
           if cfg.get('acceptance', False) else None)
  if heads:
    report['acceptance'] = {m: h[2] for m, h in heads.items()}
  if trained or 'mismatch_quantiles' not in extra:  # else keep the correctors' distribution
    extra['mismatch_quantiles'] = reporting.mismatch_quantiles(np.asarray(data.d))
  extra['distill'] = dict(episodes=cfg.episodes, tuples=stats['tuples'], seed=cfg.seed)
  os.makedirs(workdir, exist_ok=True)
  out = checkpoint.export_with_correctors(os.path.join(workdir, 'export'), model, params, pcfg,
                                          correctors, extra=extra,
                                          storage_dtype=cfg.get('storage_dtype', 'float32'),
                                          acceptance=heads)
  with open(os.path.join(workdir, 'distill_metrics.json'), 'w') as f:
    json.dump(report, f, indent=2)
  logging.info('exported world model + correctors to %s', out)
  return report
