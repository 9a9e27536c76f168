"""Reporting shared by evaluate, sweep and benchmarks: robust return statistics, paired
comparisons against the baseline, task-relative tau, one CSV writer, markdown, plots.

Returns of control tasks are often bimodal (an episode either succeeds or collapses), so every
summary carries the median, the interquartile range and a count of failed episodes next to
mean +- std. Modes are evaluated on the SAME episode seeds, so differences are paired per seed.
"""
import csv
import os
from typing import Any, Dict, Optional, Sequence

import numpy as np

FAIL_FRACTION = 0.5   # an episode "fails" below this fraction of the baseline median return
PAPER_POINT = dict(label='paper, humanoid-walk: -43.6% calls at 92.9% return',
                   calls_frac=0.564, return_frac=0.929)


def return_stats(returns: Sequence[float], fail_below: Optional[float] = None) -> Dict[str, float]:
  """mean, std, median, q25, q75 of per-episode returns [N]; ``failed``: how many are below
  ``fail_below`` (nan when not given)."""
  r = np.asarray(returns, np.float64)
  if r.ndim != 1 or r.size == 0:
    raise ValueError(f'returns must be a non-empty 1-D sequence, got shape {r.shape}')
  q25, med, q75 = np.percentile(r, [25, 50, 75])
  failed = float(np.sum(r < fail_below)) if fail_below is not None else float('nan')
  return dict(return_mean=float(r.mean()), return_std=float(r.std()), return_median=float(med),
              return_q25=float(q25), return_q75=float(q75), failed=failed)


def paired_stats(returns: Sequence[float], baseline: Sequence[float], num_boot: int = 2000,
                 seed: int = 0, level: float = 0.95,
                 groups: Optional[Sequence[int]] = None) -> Dict[str, float]:
  """Per-seed differences against the baseline (same seeds, same order) [N] and a bootstrap
  confidence interval (seeds resampled jointly) on the ratio mean(returns) / mean(baseline).
  ``groups`` [N] (optional): the cluster of each episode, e.g. the training seed of the agent
  that played it when agents are compared; episodes of one cluster are not independent, so
  the bootstrap then resamples clusters first and episodes within each drawn cluster."""
  r, b = np.asarray(returns, np.float64), np.asarray(baseline, np.float64)
  if r.shape != b.shape or r.ndim != 1:
    raise ValueError(f'paired returns need the same 1-D shape, got {r.shape} and {b.shape}')
  diff = r - b
  rng = np.random.default_rng(seed)
  if groups is None:
    idx = rng.integers(0, r.size, size=(num_boot, r.size))
    nums, denom = r[idx].mean(axis=1), b[idx].mean(axis=1)
  else:
    nums, denom = _cluster_bootstrap_means(r, b, groups, num_boot, rng)
  ratios = np.where(np.abs(denom) > 1e-12, nums / np.where(denom == 0, 1, denom), np.nan)
  lo, hi = np.nanpercentile(ratios, [50 * (1 - level), 50 * (1 + level)])
  ratio = r.mean() / b.mean() if abs(b.mean()) > 1e-12 else float('nan')
  return dict(diff_mean=float(diff.mean()), diff_median=float(np.median(diff)),
              ratio=float(ratio), ratio_lo=float(lo), ratio_hi=float(hi))


def _cluster_bootstrap_means(r, b, groups, num_boot: int, rng):
  """Means of r and b [num_boot] over two-level resamples: as many clusters as there are,
  drawn with replacement, then each drawn cluster's episodes drawn with replacement."""
  g = np.asarray(groups)
  if g.shape != r.shape:
    raise ValueError(f'groups must have shape {r.shape}, got {g.shape}')
  members = [np.flatnonzero(g == c) for c in np.unique(g)]
  nums, denom = np.empty(num_boot), np.empty(num_boot)
  for i in range(num_boot):
    picks = rng.integers(0, len(members), size=len(members))
    idx = np.concatenate([rng.choice(members[c], members[c].size) for c in picks])
    nums[i], denom[i] = r[idx].mean(), b[idx].mean()
  return nums, denom


def add_robust_stats(rows: Sequence[Dict[str, Any]], baseline_key=('mode', 'baseline'),
                     fail_fraction: float = FAIL_FRACTION) -> None:
  """Adds return_stats and paired_stats (vs the row where row[key] == value) to every row
  holding per-episode ``returns``, in place. The failure threshold is ``fail_fraction`` x the
  baseline's median return (stored as ``fail_below``)."""
  key, value = baseline_key
  base = next((r for r in rows if r.get(key) == value), None)
  base_returns = None if base is None else base['returns']
  fail_below = None
  if base_returns is not None:
    fail_below = fail_fraction * float(np.median(base_returns))
  for r in rows:
    r.update(return_stats(r['returns'], fail_below), fail_below=fail_below)
    if base_returns is not None and len(base_returns) == len(r['returns']):
      r.update(paired_stats(r['returns'], base_returns))


# --- task-relative tau -------------------------------------------------------------------

QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)


def mismatch_quantiles(distances: Sequence[float]) -> list:
  """The 101 percentiles (0, 1, ..., 100 %) of a mismatch distribution, for the export."""
  d = np.asarray(distances, np.float64).ravel()
  d = d[np.isfinite(d)]
  if d.size == 0:
    raise ValueError('no finite mismatch distances to summarise')
  return np.quantile(d, QUANTILE_LEVELS).tolist()


def tau_from_quantile(q: float, quantiles: Sequence[float]) -> float:
  """Absolute tau at quantile ``q`` in [0, 1] of the stored distribution (linear interp)."""
  if not 0.0 <= q <= 1.0:
    raise ValueError(f'tau quantile must be in [0, 1], got {q}')
  return float(np.interp(q, QUANTILE_LEVELS, np.asarray(quantiles, np.float64)))


def quantile_of_tau(tau: float, quantiles: Sequence[float]) -> float:
  """Fraction of the stored mismatch distribution at or below ``tau`` (0 below the minimum,
  1 above the maximum): the share of speculative steps that tau would accept."""
  v = np.asarray(quantiles, np.float64)
  if tau < v[0]:
    return 0.0
  if tau >= v[-1]:
    return 1.0
  hi = np.searchsorted(v, tau, side='right')   # first value above tau (ties counted below)
  lo = hi - 1
  frac = 0.0 if v[hi] == v[lo] else (tau - v[lo]) / (v[hi] - v[lo])
  return float(QUANTILE_LEVELS[lo] + frac * (QUANTILE_LEVELS[hi] - QUANTILE_LEVELS[lo]))


def resolve_taus(taus: Sequence[float], tau_quantiles: Sequence[float],
                 quantiles: Optional[Sequence[float]]):
  """[(tau_abs, tau_q)] for absolute taus and quantile taus; tau_q is nan without a stored
  distribution (and quantile taus then raise)."""
  out = []
  for t in taus:
    out.append((float(t), quantile_of_tau(t, quantiles) if quantiles else float('nan')))
  if tau_quantiles and not quantiles:
    raise ValueError('tau given as quantiles, but the export has no stored mismatch '
                     'distribution (re-run launch/distill.py)')
  for q in tau_quantiles:
    out.append((tau_from_quantile(q, quantiles), float(q)))
  return out


# --- files ---------------------------------------------------------------------------------

def write_csv(rows: Sequence[Dict[str, Any]], path: str, columns: Sequence[str]) -> None:
  """One CSV writer for every table (missing values blank, extra keys ignored)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction='ignore')
    writer.writeheader()
    writer.writerows(rows)


def _fmt(v):
  if isinstance(v, float):
    return f'{v:.3g}' if abs(v) < 1e4 else f'{v:.0f}'
  return str(v)


def markdown_table(rows: Sequence[Dict[str, Any]], columns: Sequence[str]) -> str:
  lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
  lines += ['| ' + ' | '.join(_fmt(r.get(c, '')) for c in columns) + ' |' for r in rows]
  return '\n'.join(lines) + '\n'


_SHORT_KEYS = dict(num_elites='e', num_pi_trajs='pi', temperature='T', horizon='H', init_std='s')


def short_planner(overrides: str) -> str:
  """'iterations=1,num_samples=64,num_elites=8' -> '1x64/e8' (iterations x samples, then the
  other overrides abbreviated), so different planners keep different labels; strings without
  both iterations and num_samples are returned as they are."""
  kv = dict(p.split('=', 1) for p in overrides.split(',') if '=' in p)
  if not {'iterations', 'num_samples'} <= set(kv):
    return overrides
  rest = [f'{_SHORT_KEYS.get(k, k + "=")}{v}' for k, v in kv.items()
          if k not in ('iterations', 'num_samples')]
  return '/'.join([f"{kv['iterations']}x{kv['num_samples']}"] + rest)


def variant(r: Dict[str, Any]) -> str:
  """Executor variant of a row: mode, '+learned' for the learned gate, '+ahead' for
  plan-ahead ('+ahead(L1)' with ahead_lead 1: planned 1 step before the queue end), '+defer'
  when rejected steps correct instead of waiting (on_reject 'defer'),
  '+fallback(1x64)' for a cheaper fallback planner (iterations x samples; the full overrides
  are in the row's fallback_planner column), e.g. 'mlp+learned+ahead'."""
  learned = '+learned' if r.get('gate') == 'learned' else ''
  flag = lambda k, name: name if r.get(k) not in (None, '', 0, 0.0, '0') else ''
  fb = (f"+fallback({short_planner(str(r['fallback_planner']))})"
        if r.get('fallback_planner') else '')
  defer = '+defer' if r.get('on_reject') == 'defer' else ''
  lead = int(float(r.get('ahead_lead') or 0))
  ahead = flag('ahead', f'+ahead(L{lead})' if lead else '+ahead')
  return (f"{r.get('mode')}{learned}{ahead}{defer}{fb}"
          f"{flag('online', '+online')}")


def point_label(r: Dict[str, Any]) -> str:
  """'mlp tau=0.5 (q0.93) H=3' for a row ('mlp+learned p>0.7 H=3' for the learned gate)."""
  tau_q = r.get('tau_q', float('nan'))
  q = '' if tau_q is None or not np.isfinite(tau_q) else f' (q{tau_q:.2f})'
  if r.get('mode') == 'baseline':
    return 'baseline'
  thr = 'p>' if r.get('gate') == 'learned' else 'tau='
  return f"{variant(r)} {thr}{r.get('tau', float('nan')):.3g}{q} H={r.get('exec_len')}"


def plot_return_vs_calls(rows: Sequence[Dict[str, Any]], path: str, title: str = '',
                         paper: bool = True, annotate: bool = True) -> None:
  """Median return with interquartile bars against planner calls per episode, one colour per
  mode; every point labelled (mode, tau, execution length); the baseline drawn as lines and
  the paper's operating point (relative to our baseline) marked."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(8, 5.5))
  modes = sorted({variant(r) for r in rows}, key=lambda m: (m != 'baseline', m))
  for mode in modes:
    sel = [r for r in rows if variant(r) == mode]
    y = np.array([r['return_median'] for r in sel])
    err = np.array([[m - r['return_q25'], r['return_q75'] - m] for r, m in zip(sel, y)]).T
    ax.errorbar([r['planner_calls'] for r in sel], y, yerr=err, fmt='o', capsize=3, alpha=0.8,
                label=f'{mode} (median, IQR)')
    if annotate:
      for r, m in zip(sel, y):
        ax.annotate(point_label(r), (r['planner_calls'], m), fontsize=5.5, alpha=0.8,
                    xytext=(3, 2), textcoords='offset points')
  base = next((r for r in rows if r['mode'] == 'baseline'), None)
  if base is not None:
    ax.axhline(base['return_median'], color='k', lw=0.8, ls=':', label='baseline median')
    ax.axvline(base['planner_calls'], color='k', lw=0.5, ls=':')
    if paper:
      ax.plot([PAPER_POINT['calls_frac'] * base['planner_calls']],
              [PAPER_POINT['return_frac'] * base['return_median']], 'k*', ms=12,
              label=PAPER_POINT['label'])
  ahead = any(r.get('ahead') not in (None, '', 0, 0.0, '0') for r in rows)
  ax.set_xlabel('blocking planner calls per episode (plans made ahead not counted)' if ahead
                else 'planner calls per episode')
  ax.set_ylabel('episode return')
  ax.set_title(title or 'return vs planner calls')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, loc='lower right')
  fig.tight_layout()
  fig.savefig(path, dpi=130)
  plt.close(fig)
