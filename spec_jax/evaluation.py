"""Evaluation of speculation modes on a host environment (dm_control): returns, planner calls,
corrections, fallbacks, non-finite steps and per-step decision latency (compile excluded), as
CSV, markdown and a plot (``spec_jax.reporting``)."""
import os
import statistics
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from spec_jax import correctors as corr_lib
from spec_jax import reporting
from spec_jax import speculation as sp

COLUMNS = ('mode', 'tau', 'tau_q', 'exec_len', 'horizon', 'episodes', 'return_mean',
           'return_std', 'return_median', 'return_q25', 'return_q75', 'failed', 'fail_below',
           'ratio', 'ratio_lo', 'ratio_hi', 'diff_mean', 'diff_median', 'planner_calls',
           'corrections', 'fallbacks', 'nonfinite', 'step_ms_mean', 'step_ms_median',
           'replan_ms_median', 'correct_ms_median', 'correct_to_replan_ratio')
SHORT_COLUMNS = ('mode', 'tau', 'tau_q', 'exec_len', 'return_mean', 'return_std',
                 'return_median', 'return_q25', 'return_q75', 'failed', 'ratio', 'ratio_lo',
                 'ratio_hi', 'planner_calls', 'fallbacks', 'step_ms_mean')


def _timed_step(step_fn, state, obs, key, t0):
  start = time.perf_counter()
  action, state, info = step_fn(state, obs, key, t0)
  action = np.asarray(jax.block_until_ready(action))
  return action, state, info, 1e3 * (time.perf_counter() - start)


def run_episode(step_fn, init_state, env, key, seed: int, log_fn=None) -> Dict[str, Any]:
  """One episode with ``step_fn(state, obs, key, t0) -> (action, state, info)``. Steps whose
  input was non-finite (SAFE_ACTION emitted) are reported with their step index."""
  obs, done, t, ret = env.reset(seed=seed), False, 0, 0.0
  state, replan_ms, correct_ms, bad_steps = init_state, [], [], []
  while not done:
    key, step_key = jax.random.split(key)
    action, state, info, ms = _timed_step(step_fn, state, jnp.asarray(obs), step_key, t == 0)
    (replan_ms if bool(info.replanned) else correct_ms).append(ms)
    if bool(info.nonfinite):
      bad_steps.append(t)
      if log_fn:
        log_fn(f'non-finite observation/latent/action at episode seed {seed}, step {t}: '
               'safe action emitted')
    obs, reward, done, _ = env.step(action)
    ret, t = ret + reward, t + 1
  return dict(ret=ret, planner_calls=int(state.planner_calls), corrections=int(state.corrections),
              fallbacks=int(state.fallbacks), nonfinite=int(state.nonfinite),
              nonfinite_steps=bad_steps, replan_ms=replan_ms, correct_ms=correct_ms)


def _median(xs):
  return float(statistics.median(xs)) if xs else float('nan')


def evaluate_mode(model, params, planner_cfg, spec_cfg: sp.SpecConfig, corrector, cparams, env,
                  tau: float, episodes: int, key: jax.Array, seed: int = 0,
                  log_fn=None, tau_q: float = float('nan')) -> Dict[str, Any]:
  """Runs ``episodes`` episodes of one mode on seeds seed, seed+1, ... (the same seeds for
  every mode: results pair per seed). Returns a summary row (see COLUMNS) with the
  per-episode ``returns`` list; ``reporting.add_robust_stats`` adds medians and pairing."""
  init = sp.init_state(model, planner_cfg, spec_cfg)
  step_fn = lambda s, o, k, t0: sp.step(model, params, planner_cfg, spec_cfg, corrector, cparams,
                                        s, o, k, tau, t0)
  # Compile (both cond branches are compiled together) before timing anything.
  jax.block_until_ready(step_fn(init, jnp.zeros(model.cfg.obs_dim), key, True)[0])
  eps = []
  for ep in range(episodes):
    eps.append(run_episode(step_fn, init, env, jax.random.fold_in(key, ep), seed + ep, log_fn))
    if log_fn:
      log_fn(f'{spec_cfg.mode} tau={tau:.4g} H={spec_cfg.effective_exec_len} episode '
             f'{ep + 1}/{episodes}: return {eps[-1]["ret"]:.1f}, '
             f'{eps[-1]["planner_calls"]} planner calls')
  replan = [m for e in eps for m in e['replan_ms']]
  correct = [m for e in eps for m in e['correct_ms']]
  returns = [e['ret'] for e in eps]
  mean = lambda k: float(np.mean([e[k] for e in eps]))
  return dict(mode=spec_cfg.mode, tau=float(tau), tau_q=float(tau_q),
              exec_len=spec_cfg.effective_exec_len, horizon=planner_cfg.horizon,
              episodes=episodes, returns=returns, seeds=list(range(seed, seed + episodes)),
              return_mean=float(np.mean(returns)), return_std=float(np.std(returns)),
              planner_calls=mean('planner_calls'), corrections=mean('corrections'),
              fallbacks=mean('fallbacks'), nonfinite=float(sum(e['nonfinite'] for e in eps)),
              step_ms_mean=float(np.mean(replan + correct)),
              step_ms_median=_median(replan + correct), replan_ms_median=_median(replan),
              correct_ms_median=_median(correct),
              correct_to_replan_ratio=_median(correct) / _median(replan) if correct else float('nan'))


def write_outputs(rows: List[Dict[str, Any]], workdir: str, name: str = 'evaluation',
                  title: str = '') -> Dict[str, str]:
  """CSV (all columns + per-episode returns), markdown (short columns) and the labelled
  return-vs-calls plot. Adds robust and paired statistics to ``rows`` first."""
  reporting.add_robust_stats(rows)
  os.makedirs(workdir, exist_ok=True)
  paths = dict(csv=os.path.join(workdir, f'{name}.csv'), md=os.path.join(workdir, f'{name}.md'),
               png=os.path.join(workdir, f'{name}.png'))
  for r in rows:
    r['returns_per_seed'] = ' '.join(f'{x:.1f}' for x in r['returns'])
  reporting.write_csv(rows, paths['csv'], COLUMNS + ('returns_per_seed',))
  with open(paths['md'], 'w') as f:
    f.write(reporting.markdown_table(rows, SHORT_COLUMNS))
  reporting.plot_return_vs_calls(rows, paths['png'], title=title)
  return paths


class Point(NamedTuple):
  """One evaluated configuration: mode, execution length, absolute tau and its quantile."""
  mode: str
  exec_len: int
  tau: float
  tau_q: float


def grid(blocks: Sequence[Dict[str, Any]], quantiles: Optional[Sequence[float]],
         baseline: bool = True) -> List[Point]:
  """Expands blocks ``{modes, exec_lens, taus, tau_quantiles}`` into points (baseline first,
  once, duplicates removed). Quantile taus are resolved on the export's stored mismatch
  distribution ``quantiles`` (``reporting.resolve_taus``); tau = inf means never verify.
  ``baseline=False`` leaves the baseline out (a later pass on the same seeds, merged with
  ``combine``, pairs with the baseline of an earlier pass)."""
  points = [Point('baseline', 1, float('inf'), float('nan'))] if baseline else []
  for b in blocks:
    taus = reporting.resolve_taus(tuple(b.get('taus', ())), tuple(b.get('tau_quantiles', ())),
                                  quantiles)
    for mode in b['modes']:
      if mode == 'baseline':
        continue
      for h in b['exec_lens']:
        for tau, tau_q in taus:
          p = Point(mode, int(h), tau, tau_q)
          if p not in points:
            points.append(p)
  return points


def evaluate_grid(model, params, base_planner, spec_planner, correctors: Dict[str, Any], env,
                  points: Sequence[Point], episodes: int, key: jax.Array, seed: int,
                  log_fn=None) -> List[Dict[str, Any]]:
  """Evaluates every point on the same episode seeds: the baseline with ``base_planner`` (the
  horizon the model was trained with), speculative modes with ``spec_planner`` (whose horizon
  must be >= every exec_len). ``correctors`` maps mode -> (Corrector, params)."""
  rows = []
  for p in points:
    if corr_lib.needs_corrector(p.mode) and p.mode not in correctors:
      raise ValueError(f'mode {p.mode!r} needs a corrector; have {sorted(correctors)} '
                       '(run launch/distill.py)')
    cor, cparams = correctors.get(p.mode, (None, None))
    pcfg = base_planner if p.mode == 'baseline' else spec_planner
    if p.exec_len > pcfg.horizon:
      raise ValueError(f'exec_len {p.exec_len} exceeds the planner horizon {pcfg.horizon}: '
                       'raise the speculative planner horizon')
    scfg = sp.SpecConfig(mode=p.mode, exec_len=p.exec_len, history=cor.cfg.history if cor else 4)
    rows.append(evaluate_mode(model, params, pcfg, scfg, cor, cparams, env, p.tau, episodes, key,
                              seed, log_fn=log_fn, tau_q=p.tau_q))
  return rows


def run(cfg, export_dir: str, workdir: str):
  """The evaluation job behind launch/evaluate.py: loads the export (and its correctors and
  stored mismatch distribution), evaluates ``grid(cfg.blocks)`` on ``cfg.episodes`` episodes
  from seed ``cfg.seed`` with the baseline planner as exported and the speculative planner
  with ``cfg.spec_planner`` overrides (default: as exported), writes the outputs.
  Returns (rows, paths)."""
  import dataclasses
  from absl import logging
  from spec_jax import checkpoint
  from spec_jax import logs
  from spec_jax.envs import dmc
  logs.setup()
  model, params, pcfg, cors, meta = checkpoint.load_with_correctors(export_dir)
  extra = meta['extra']
  base_pcfg = dataclasses.replace(pcfg, **dict(cfg.get('base_planner', {}) or {}))
  spec_pcfg = dataclasses.replace(pcfg, **dict(cfg.get('spec_planner', {}) or {}))
  env = dmc.DMCEnv(extra['task'], action_repeat=extra['action_repeat'],
                   episode_length=cfg.get('episode_length', 0) or extra['episode_length'])
  points = grid([dict(b) for b in cfg.blocks], extra.get('mismatch_quantiles'),
                baseline=cfg.get('baseline', True))
  logging.info('%d configurations x %d episodes (seeds %d..%d)', len(points), cfg.episodes,
               cfg.seed, cfg.seed + cfg.episodes - 1)
  title = f"{extra['task']} ({extra.get('env_step', '?')} env steps), {cfg.episodes} episodes"
  rows = []
  for i, p in enumerate(points):  # outputs rewritten after every point: nothing lost on a stop
    rows += evaluate_grid(model, params, base_pcfg, spec_pcfg, cors, env, [p], cfg.episodes,
                          jax.random.PRNGKey(cfg.seed), cfg.seed, log_fn=logging.info)
    paths = write_outputs(rows, workdir, title=title)
    logging.info('point %d/%d done: %s', i + 1, len(points), reporting.point_label(rows[-1]))
  return rows, paths


def read_rows(path: str) -> List[Dict[str, Any]]:
  """Rows of an evaluation.csv with numbers parsed and per-seed ``returns`` restored."""
  import csv
  rows = []
  with open(path, newline='') as f:
    for r in csv.DictReader(f):
      row = {}
      for k, v in r.items():
        try:
          row[k] = float(v) if k not in ('mode',) else v
        except (TypeError, ValueError):
          row[k] = v
      row['returns'] = [float(x) for x in r['returns_per_seed'].split()]
      row['exec_len'], row['horizon'] = int(row['exec_len']), int(row['horizon'])
      rows.append(row)
  return rows


def combine(paths: Sequence[str], workdir: str, reference_horizon: int, title: str = ''):
  """Merges evaluation passes made on the same seeds: the baseline planned with
  ``reference_horizon`` is THE baseline (paired statistics refer to it); baselines with other
  horizons are kept as 'baseline-h<H>' rows; a point present in several passes is kept once
  (the first). Returns (rows, paths)."""
  rows, seen = [], set()
  for path in paths:
    for r in read_rows(path):
      if r['mode'] == 'baseline' and r['horizon'] != reference_horizon:
        r['mode'] = f"baseline-h{r['horizon']}"
      key = (r['mode'], r['exec_len'], r['tau'], r['horizon'])
      if key not in seen:
        seen.add(key)
        rows.append(r)
  if not any(r['mode'] == 'baseline' for r in rows):
    raise ValueError(f'no baseline with horizon {reference_horizon} in {list(paths)}')
  rows.sort(key=lambda r: (r['mode'] != 'baseline', not r['mode'].startswith('baseline')))
  return rows, write_outputs(rows, workdir, title=title)
