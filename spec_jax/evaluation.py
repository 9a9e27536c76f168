"""Evaluation of speculation modes on dm_control: returns, planner calls, corrections,
fallbacks and per-step decision latency (compile excluded), as CSV, markdown and a plot."""
import csv
import os
import statistics
import time
from typing import Any, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from spec_jax import speculation as sp

COLUMNS = ('mode', 'tau', 'exec_len', 'episodes', 'return_mean', 'return_std',
           'planner_calls', 'corrections', 'fallbacks', 'step_ms_mean', 'step_ms_median',
           'replan_ms_median',
           'correct_ms_median', 'correct_to_replan_ratio')


def _timed_step(step_fn, state, obs, key, t0):
  start = time.perf_counter()
  action, state, info = step_fn(state, obs, key, t0)
  action = np.asarray(jax.block_until_ready(action))
  return action, state, info, 1e3 * (time.perf_counter() - start)


def run_episode(step_fn, init_state, env, key, seed: int) -> Dict[str, Any]:
  """One episode with ``step_fn(state, obs, key, t0) -> (action, state, info)``."""
  obs, done, t, ret = env.reset(seed=seed), False, 0, 0.0
  state, replan_ms, correct_ms = init_state, [], []
  while not done:
    key, step_key = jax.random.split(key)
    action, state, info, ms = _timed_step(step_fn, state, jnp.asarray(obs), step_key, t == 0)
    (replan_ms if bool(info.replanned) else correct_ms).append(ms)
    obs, reward, done, _ = env.step(action)
    ret, t = ret + reward, t + 1
  return dict(ret=ret, planner_calls=int(state.planner_calls), corrections=int(state.corrections),
              fallbacks=int(state.fallbacks), replan_ms=replan_ms, correct_ms=correct_ms)


def _median(xs):
  return float(statistics.median(xs)) if xs else float('nan')


def evaluate_mode(model, params, planner_cfg, spec_cfg: sp.SpecConfig, corrector, cparams, env,
                  tau: float, episodes: int, key: jax.Array, seed: int = 0,
                  log_fn=None) -> Dict[str, Any]:
  """Runs ``episodes`` episodes of one mode; returns a summary row (see COLUMNS)."""
  init = sp.init_state(model, planner_cfg, spec_cfg)
  step_fn = lambda s, o, k, t0: sp.step(model, params, planner_cfg, spec_cfg, corrector, cparams,
                                        s, o, k, tau, t0)
  # Compile (both cond branches are compiled together) before timing anything.
  jax.block_until_ready(step_fn(init, jnp.zeros(model.cfg.obs_dim), key, True)[0])
  eps = []
  for ep in range(episodes):
    eps.append(run_episode(step_fn, init, env, jax.random.fold_in(key, ep), seed + ep))
    if log_fn:
      log_fn(f'{spec_cfg.mode} tau={tau} episode {ep + 1}/{episodes}: return {eps[-1]["ret"]:.1f}, '
             f'{eps[-1]["planner_calls"]} planner calls')
  replan = [m for e in eps for m in e['replan_ms']]
  correct = [m for e in eps for m in e['correct_ms']]
  returns = [e['ret'] for e in eps]
  return dict(mode=spec_cfg.mode, tau=tau, exec_len=spec_cfg.effective_exec_len,
              episodes=episodes, return_mean=float(np.mean(returns)),
              return_std=float(np.std(returns)),
              planner_calls=float(np.mean([e['planner_calls'] for e in eps])),
              corrections=float(np.mean([e['corrections'] for e in eps])),
              fallbacks=float(np.mean([e['fallbacks'] for e in eps])),
              step_ms_mean=float(np.mean(replan + correct)),
              step_ms_median=_median(replan + correct), replan_ms_median=_median(replan),
              correct_ms_median=_median(correct),
              correct_to_replan_ratio=_median(correct) / _median(replan) if correct else float('nan'))


def write_csv(rows: Sequence[Dict[str, Any]], path: str, columns=COLUMNS) -> None:
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction='ignore')
    writer.writeheader()
    writer.writerows(rows)


def _fmt(v):
  return f'{v:.3g}' if isinstance(v, float) else str(v)


def markdown_table(rows: Sequence[Dict[str, Any]], columns=COLUMNS) -> str:
  lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
  lines += ['| ' + ' | '.join(_fmt(r.get(c, '')) for c in columns) + ' |' for r in rows]
  return '\n'.join(lines) + '\n'


def plot_return_vs_calls(rows: Sequence[Dict[str, Any]], path: str,
                         group: str = 'mode', title: Optional[str] = None) -> None:
  """Scatter of mean return (with std) against planner calls per episode, one series a group."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 4))
  for name in sorted({str(r[group]) for r in rows}):
    sel = [r for r in rows if str(r[group]) == name]
    ax.errorbar([r['planner_calls'] for r in sel], [r['return_mean'] for r in sel],
                yerr=[r['return_std'] for r in sel], fmt='o', capsize=3, label=f'{group}={name}')
  ax.set_xlabel('planner calls per episode')
  ax.set_ylabel('episode return')
  ax.set_title(title or 'return vs planner calls')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write_outputs(rows: List[Dict[str, Any]], workdir: str, name: str = 'evaluation') -> Dict[str, str]:
  os.makedirs(workdir, exist_ok=True)
  paths = dict(csv=os.path.join(workdir, f'{name}.csv'), md=os.path.join(workdir, f'{name}.md'),
               png=os.path.join(workdir, f'{name}.png'))
  write_csv(rows, paths['csv'])
  with open(paths['md'], 'w') as f:
    f.write(markdown_table(rows))
  plot_return_vs_calls(rows, paths['png'])
  return paths
