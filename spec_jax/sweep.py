"""Vectorised sweeps of tau x seeds x episodes (one jit per speculation horizon) on MJX.

``episode_fn`` runs one whole episode for one (tau, key) pair: reset, then a lax.scan over the
episode of (speculative step -> MJX step with action repeat). ``sweep`` runs the whole grid of
taus [T] x seeds [S] x episodes [E] as one batch in one jit, with a single batch-level
lax.cond so that the planner runs only on steps where some environment replans;
``sweep_vmap`` is the plain jit(vmap(vmap(vmap(episode_fn)))). The horizon (exec_len) fixes
shapes and control flow, so each horizon compiles once. ``sweep_loop`` runs the same grid point
by point with the single-episode jit, on the same keys.
"""
import dataclasses
import functools
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from spec_jax import speculation as sp


class EpisodeStats(NamedTuple):
  ret: jax.Array            # [] episode return
  planner_calls: jax.Array  # []
  corrections: jax.Array    # []
  fallbacks: jax.Array      # []
  steps: jax.Array          # [] steps before termination (NaN physics) or the episode end


@dataclasses.dataclass(frozen=True)
class SweepSetup:
  """Everything static about a sweep point except tau and the key (hashable)."""
  env: Any                  # spec_jax.envs.mjx.MJXEnv
  model: Any
  planner_cfg: Any
  spec_cfg: sp.SpecConfig
  corrector: Optional[Any] = None


def episode_fn(setup: SweepSetup, params, cparams, tau, key) -> EpisodeStats:
  """One episode for one environment (a batch of one). tau [] and key [2] may be traced."""
  stats = _rollout(setup, params, cparams, jnp.asarray(tau, jnp.float32)[None], key[None])
  return jax.tree_util.tree_map(lambda x: x[0], stats)


def grid_keys(seeds: Sequence[int], episodes: int) -> jax.Array:
  """Keys [S, E, 2]: episode e of seed s uses fold_in(PRNGKey(s), e)."""
  return jnp.stack([jnp.stack([jax.random.fold_in(jax.random.PRNGKey(s), e)
                               for e in range(episodes)]) for s in seeds])


def _rollout(setup: SweepSetup, params, cparams, taus: jax.Array,
             keys: jax.Array) -> EpisodeStats:
  """B whole episodes in lock-step: taus [B], keys [B, 2] -> EpisodeStats leaves [B].

  Uses ``speculation.step_batch_shared``: the planner runs only on steps where some
  environment replans (for B = 1 this is the single-environment cond of ``speculation.step``).
  """
  B, length = taus.shape[0], setup.env.spec.episode_length
  split = jax.vmap(jax.random.split)(keys)
  env_state = jax.vmap(setup.env.reset_one)(split[:, 0])
  step_keys = jnp.swapaxes(jax.vmap(lambda k: jax.random.split(k, length))(split[:, 1]), 0, 1)
  state = sp.batch_state(sp.init_state(setup.model, setup.planner_cfg, setup.spec_cfg), B)

  def body(carry, inp):
    env_state, state, ret, alive, steps = carry
    t, k = inp
    action, state, _ = sp.step_batch_shared(
        setup.model, params, setup.planner_cfg, setup.spec_cfg, setup.corrector, cparams, state,
        env_state.obs, k, taus, jnp.full((B,), t == 0))
    env_state, reward = jax.vmap(setup.env.step_one)(env_state, action)
    alive = alive & (env_state.done == 0)
    return (env_state, state, ret + jnp.where(alive, reward, 0.0), alive,
            steps + alive.astype(jnp.int32)), None

  init = (env_state, state, jnp.zeros((B,)), jnp.ones((B,), bool), jnp.zeros((B,), jnp.int32))
  (_, state, ret, _, steps), _ = jax.lax.scan(body, init, (jnp.arange(length), step_keys))
  return EpisodeStats(ret=ret, planner_calls=state.planner_calls, corrections=state.corrections,
                      fallbacks=state.fallbacks, steps=steps)


batched_episodes = jax.jit(_rollout, static_argnums=0)


def sweep(setup: SweepSetup, params, cparams, taus: jax.Array, keys: jax.Array) -> EpisodeStats:
  """taus [T], keys [S, E, 2] -> EpisodeStats with leaves [T, S, E]: the whole grid as one
  batch of T*S*E environments in one jit (``batched_episodes``)."""
  T, (S, E) = taus.shape[0], keys.shape[:2]
  tau_b = jnp.repeat(jnp.asarray(taus, jnp.float32), S * E)
  keys_b = jnp.tile(keys.reshape(S * E, -1), (T, 1))
  stats = batched_episodes(setup, params, cparams, tau_b, keys_b)
  return jax.tree_util.tree_map(lambda x: x.reshape(T, S, E), stats)


@functools.partial(jax.jit, static_argnums=0)
def sweep_vmap(setup: SweepSetup, params, cparams, taus: jax.Array,
               keys: jax.Array) -> EpisodeStats:
  """jit(vmap(vmap(vmap(episode_fn)))): the same grid, each env's cond becoming a select
  (the planner runs at every step). Kept for comparison in benchmarks/bench_sweep.py."""
  fn = lambda tau, key: episode_fn(setup, params, cparams, tau, key)
  over_episodes = jax.vmap(fn, in_axes=(None, 0))
  over_seeds = jax.vmap(over_episodes, in_axes=(None, 0))
  return jax.vmap(over_seeds, in_axes=(0, None))(taus, keys)


_single_episode = jax.jit(episode_fn, static_argnums=0)


def sweep_loop(setup: SweepSetup, params, cparams, taus, keys) -> EpisodeStats:
  """The same grid as ``sweep``, one jitted episode at a time in a Python loop."""
  T, (S, E) = len(taus), keys.shape[:2]
  out = [[[_single_episode(setup, params, cparams, jnp.float32(taus[i]), keys[s, e])
           for e in range(E)] for s in range(S)] for i in range(T)]
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs).reshape(T, S, E),
                                *[x for a in out for b in a for x in b])


def summarize(stats: EpisodeStats, taus, exec_len: int, mode: str,
              perturbation: str = 'none') -> List[Dict[str, Any]]:
  """One row per tau: mean/std return over seeds x episodes, calls, fallback rate."""
  rows = []
  for i, tau in enumerate(np.asarray(taus).tolist()):
    pick = lambda x: np.asarray(x[i]).ravel().astype(np.float64)
    steps = pick(stats.steps)
    rows.append(dict(mode=mode, exec_len=exec_len, tau=float(tau), perturbation=perturbation,
                     episodes=int(steps.size), return_mean=float(pick(stats.ret).mean()),
                     return_std=float(pick(stats.ret).std()),
                     planner_calls=float(pick(stats.planner_calls).mean()),
                     corrections=float(pick(stats.corrections).mean()),
                     fallbacks=float(pick(stats.fallbacks).mean()),
                     fallback_rate=float((pick(stats.fallbacks) / np.maximum(steps, 1)).mean())))
  return rows


def timed(fn, *args):
  """(result, seconds) with the result blocked on."""
  start = time.perf_counter()
  out = jax.block_until_ready(fn(*args))
  return out, time.perf_counter() - start


def _group(r: Dict[str, Any]):
  return r['mode'], r['exec_len'], r['perturbation']


def _finish_plot(fig, ax, xlabel: str, ylabel: str, path: str) -> None:
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def plot_sweep(rows: Sequence[Dict[str, Any]], path_pareto: str, path_fallback: str) -> None:
  """Return vs planner calls per horizon (with its Pareto front), and fallback rate vs tau."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  groups = sorted({_group(r) for r in rows})
  label = lambda g: f'{g[0]} H={g[1]} {g[2]}'
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for g in groups:
    sel = sorted([r for r in rows if _group(r) == g], key=lambda r: r['planner_calls'])
    ax.errorbar([r['planner_calls'] for r in sel], [r['return_mean'] for r in sel],
                yerr=[r['return_std'] for r in sel], fmt='o', capsize=2, alpha=0.7,
                label=label(g))
  front = pareto_front(rows)
  ax.plot([r['planner_calls'] for r in front], [r['return_mean'] for r in front], 'k--', lw=1,
          label='Pareto front')
  _finish_plot(fig, ax, 'planner calls per episode', 'episode return', path_pareto)
  plt.close(fig)
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for g in groups:
    sel = sorted([r for r in rows if _group(r) == g], key=lambda r: r['tau'])
    ax.plot([r['tau'] for r in sel], [r['fallback_rate'] for r in sel], 'o-', label=label(g))
  _finish_plot(fig, ax, 'tau', 'fallback replans per step', path_fallback)
  plt.close(fig)


def pareto_front(rows: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
  """Rows not dominated in (fewer planner calls, higher return), sorted by calls."""
  front = []
  for r in sorted(rows, key=lambda r: (r['planner_calls'], -r['return_mean'])):
    if not front or r['return_mean'] > front[-1]['return_mean']:
      front.append(r)
  return front
