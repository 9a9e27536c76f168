"""Vectorised sweeps of tau x seeds x episodes (one jit per speculation horizon) on a traced
environment backend (MJX, Brax: ``spec_jax.envs``).

``episode_fn`` runs one whole episode for one (tau, key) pair: reset, then a lax.scan over the
episode of (speculative step -> environment step with action repeat). ``sweep`` runs the whole
grid of taus [T] x seeds [S] x episodes [E] as one batch in one jit in which only the
environments that replan are planned (``SweepSetup.replanning``: 'compact', one vmapped
sub-batch of the next capacity, ``speculation.step_batch_compact``, for accelerators; or
'sequential', one at a time in a while_loop, ``speculation.step_batch_sequential``, for CPU
hosts), sharded over all local devices (shard_map over a 1-D Mesh: each device plans its own
shard's replans);
``sweep_vmap`` is the plain jit(vmap(vmap(vmap(episode_fn)))). The horizon (exec_len) fixes
shapes and control flow, so each horizon compiles once. ``sweep_loop`` runs the same grid point
by point with the single-episode jit, on the same keys.
"""
import dataclasses
import functools
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from spec_jax import correctors as corr_lib
from spec_jax import reporting
from spec_jax import speculation as sp


class EpisodeStats(NamedTuple):
  ret: jax.Array            # [] episode return
  planner_calls: jax.Array  # []
  corrections: jax.Array    # []
  fallbacks: jax.Array      # []
  steps: jax.Array          # [] steps before termination (NaN physics) or the episode end
  nonfinite: jax.Array      # [] steps that emitted the safe action (non-finite input)
  first_bad_step: jax.Array  # [] first such step (-1 if none): env index + step are reported
  plan_evals: jax.Array     # [] this env's share of the planner evaluations the batch executed
                            #    (capacity or, sequential, 1 per replan): sums to the total


REPLANNING = {'compact': sp.step_batch_compact, 'sequential': sp.step_batch_sequential}


@dataclasses.dataclass(frozen=True)
class SweepSetup:
  """Everything static about a sweep point except tau and the key (hashable)."""
  env: Any                  # a traced backend (spec_jax.envs: reset_one / step_one, hashable)
  ex: sp.Executor           # model, planner, speculation settings, corrector
  task: Optional[int] = None  # multitask models: the task id (env seen through TracedTaskView)
  # How the environments that replan at a step are planned: 'compact' (one vmapped sub-batch,
  # speculation.step_batch_compact: for accelerators) or 'sequential' (one at a time, exactly
  # the needed plans, speculation.step_batch_sequential: for CPU hosts).
  replanning: str = 'compact'

  def __post_init__(self):
    if self.replanning not in REPLANNING:
      raise ValueError(f'replanning must be one of {tuple(REPLANNING)}, got {self.replanning!r}')


def plan_evals(replanning: str, replanned: jax.Array) -> jax.Array:
  """Each environment's share of the planner evaluations one batched step executes:
  replanned [B] bool -> [B]. 'compact' plans the next capacity (``speculation.capacities``)
  >= the n replanning environments, shared among them (capacity / n each); 'sequential' plans
  exactly them (1 each). Non-replanning environments get 0. E.g. B = 10, n = 3: capacity 4,
  4/3 each (compact), 1 each (sequential)."""
  if replanning == 'sequential':
    return replanned.astype(jnp.float32)
  caps = sp.capacities(replanned.shape[0])
  n = jnp.sum(replanned.astype(jnp.int32))
  cap = jnp.asarray(caps)[sp.capacity_index(n, caps)]
  return jnp.where(replanned, cap / jnp.maximum(n, 1), 0.0)


def resolve_replanning(name: str) -> str:
  """'compact' | 'sequential' as given; 'auto': 'sequential' on a CPU backend (one plan fills
  a core, BUILD_NOTES session 10), 'compact' on GPU/TPU."""
  if name == 'auto':
    return 'sequential' if jax.default_backend() == 'cpu' else 'compact'
  if name not in REPLANNING:
    raise ValueError(f"replanning must be 'auto' or one of {tuple(REPLANNING)}, got {name!r}")
  return name


def episode_fn(setup: SweepSetup, params: sp.ExecParams, tau, key) -> EpisodeStats:
  """One episode for one environment (a batch of one). tau [] and key [2] may be traced."""
  stats = _rollout(setup, params, jnp.asarray(tau, jnp.float32)[None], key[None])
  return jax.tree_util.tree_map(lambda x: x[0], stats)


def grid_keys(seeds: Sequence[int], episodes: int) -> jax.Array:
  """Keys [S, E, 2]: episode e of seed s uses fold_in(PRNGKey(s), e)."""
  return jnp.stack([jnp.stack([jax.random.fold_in(jax.random.PRNGKey(s), e)
                               for e in range(episodes)]) for s in seeds])


def _rollout(setup: SweepSetup, params: sp.ExecParams, taus: jax.Array,
             keys: jax.Array) -> EpisodeStats:
  """B whole episodes in lock-step: taus [B], keys [B, 2] -> EpisodeStats leaves [B].

  Uses ``speculation.step_batch_compact`` (or ``step_batch_sequential``, see
  SweepSetup.replanning): the planner runs only for the environments that replan.
  """
  B, length = taus.shape[0], setup.env.spec.episode_length
  split = jax.vmap(jax.random.split)(keys)
  env_state = jax.vmap(setup.env.reset_one)(split[:, 0])
  step_keys = jnp.swapaxes(jax.vmap(lambda k: jax.random.split(k, length))(split[:, 1]), 0, 1)
  state = sp.batch_state(sp.init_state(setup.ex), B)
  step_fn = REPLANNING[setup.replanning]

  def body(carry, inp):
    env_state, state, ret, alive, steps, first_bad, evals = carry
    t, k = inp
    action, new_state, info = step_fn(setup.ex, params, state, env_state.obs, k, taus,
                                      jnp.full((B,), t == 0), setup.task)
    # Environments that terminated (NaN physics) stop counting: their counters are frozen.
    state = jax.tree_util.tree_map(
        lambda n, o: jnp.where(alive.reshape((B,) + (1,) * (n.ndim - 1)), n, o), new_state, state)
    first_bad = jnp.where((first_bad < 0) & alive & info.nonfinite, t, first_bad)
    evals = evals + plan_evals(setup.replanning, info.replanned)
    env_state, reward = jax.vmap(setup.env.step_one)(env_state, action)
    alive = alive & (env_state.done == 0)
    return (env_state, state, ret + jnp.where(alive, reward, 0.0), alive,
            steps + alive.astype(jnp.int32), first_bad, evals), None

  init = (env_state, state, jnp.zeros((B,)), jnp.ones((B,), bool), jnp.zeros((B,), jnp.int32),
          jnp.full((B,), -1, jnp.int32), jnp.zeros((B,)))
  (_, state, ret, _, steps, first_bad, evals), _ = jax.lax.scan(
      body, init, (jnp.arange(length), step_keys))
  return EpisodeStats(ret=ret, planner_calls=state.planner_calls, corrections=state.corrections,
                      fallbacks=state.fallbacks, steps=steps, nonfinite=state.nonfinite,
                      first_bad_step=first_bad, plan_evals=evals)


batched_episodes = jax.jit(_rollout, static_argnums=0)


@functools.lru_cache(maxsize=None)
def _sharded_runner(setup: SweepSetup, devices: Tuple[Any, ...]):
  mesh = jax.sharding.Mesh(np.array(devices), ('grid',))
  spec, rep = jax.sharding.PartitionSpec('grid'), jax.sharding.PartitionSpec()
  fn = lambda params, taus, keys: _rollout(setup, params, taus, keys)
  # check_vma=False: the episode scan carries replicated planner constants next to per-env
  # values; every output is per-env (sharded), so no cross-device reduction is implied.
  return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=(rep, spec, spec), out_specs=spec,
                               check_vma=False))


def sweep(setup: SweepSetup, params: sp.ExecParams, taus: jax.Array, keys: jax.Array,
          devices: Optional[Sequence[Any]] = None) -> EpisodeStats:
  """taus [T], keys [S, E, 2] -> EpisodeStats with leaves [T, S, E]: the whole grid as one
  batch of T*S*E environments in one jit, split over ``devices`` (default: all local
  devices; the batch is padded to a multiple of their number). Multi-host: call
  jax.distributed.initialize() first and pass each host its jax.local_devices() with its share
  of the keys (BUILD_NOTES.md)."""
  T, (S, E) = taus.shape[0], keys.shape[:2]
  tau_b = jnp.repeat(jnp.asarray(taus, jnp.float32), S * E)
  keys_b = jnp.tile(keys.reshape(S * E, -1), (T, 1))
  devices = tuple(devices or jax.local_devices())
  if len(devices) == 1:
    stats = batched_episodes(setup, params, tau_b, keys_b)
  else:
    B = tau_b.shape[0]
    pad = (-B) % len(devices)
    tau_p = jnp.concatenate([tau_b, jnp.repeat(tau_b[-1:], pad)])
    keys_p = jnp.concatenate([keys_b, jnp.repeat(keys_b[-1:], pad, axis=0)])
    stats = _sharded_runner(setup, devices)(params, tau_p, keys_p)
    stats = jax.tree_util.tree_map(lambda x: x[:B], stats)
  return jax.tree_util.tree_map(lambda x: x.reshape(T, S, E), stats)


@functools.partial(jax.jit, static_argnums=0)
def sweep_vmap(setup: SweepSetup, params: sp.ExecParams, taus: jax.Array,
               keys: jax.Array) -> EpisodeStats:
  """jit(vmap(vmap(vmap(episode_fn)))): the same grid, each env's cond becoming a select
  (with replanning 'compact', the planner runs at every step). Kept for comparison in
  benchmarks/bench_sweep.py."""
  fn = lambda tau, key: episode_fn(setup, params, tau, key)
  over_episodes = jax.vmap(fn, in_axes=(None, 0))
  over_seeds = jax.vmap(over_episodes, in_axes=(None, 0))
  return jax.vmap(over_seeds, in_axes=(0, None))(taus, keys)


_single_episode = jax.jit(episode_fn, static_argnums=0)


def sweep_loop(setup: SweepSetup, params: sp.ExecParams, taus, keys) -> EpisodeStats:
  """The same grid as ``sweep``, one jitted episode at a time in a Python loop."""
  T, (S, E) = len(taus), keys.shape[:2]
  out = [[[_single_episode(setup, params, jnp.float32(taus[i]), keys[s, e])
           for e in range(E)] for s in range(S)] for i in range(T)]
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs).reshape(T, S, E),
                                *[x for a in out for b in a for x in b])


def summarize(stats: EpisodeStats, taus, exec_len: int, mode: str,
              perturbation: str = 'none', fail_below=None) -> List[Dict[str, Any]]:
  """One row per tau: mean/std/median/IQR return over seeds x episodes (and the count below
  ``fail_below``), calls, fallback rate, and the non-finite steps with the flat environment
  index (seed-major, then episode) and first bad step of each affected environment."""
  rows = []
  for i, tau in enumerate(np.asarray(taus).tolist()):
    pick = lambda x: np.asarray(x[i]).ravel().astype(np.float64)
    steps, first_bad = pick(stats.steps), pick(stats.first_bad_step).astype(int)
    bad_envs = [(int(e), int(first_bad[e])) for e in np.flatnonzero(first_bad >= 0)]
    rows.append(dict(mode=mode, exec_len=exec_len, tau=float(tau), perturbation=perturbation,
                     episodes=int(steps.size), returns=pick(stats.ret).tolist(),
                     **reporting.return_stats(pick(stats.ret), fail_below),
                     planner_calls=float(pick(stats.planner_calls).mean()),
                     corrections=float(pick(stats.corrections).mean()),
                     fallbacks=float(pick(stats.fallbacks).mean()),
                     fallback_rate=float((pick(stats.fallbacks) / np.maximum(steps, 1)).mean()),
                     nonfinite=float(pick(stats.nonfinite).sum()),
                     nonfinite_envs=' '.join(f'env{e}@step{t}' for e, t in bad_envs)))
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
    med = np.array([r['return_median'] for r in sel])
    iqr = np.array([[m - r['return_q25'], r['return_q75'] - m] for r, m in zip(sel, med)]).T
    ax.errorbar([r['planner_calls'] for r in sel], med, yerr=iqr, fmt='o', capsize=2, alpha=0.7,
                label=label(g) + ' (median, IQR)')
    for r, m in zip(sel, med):
      ax.annotate(f"tau={r['tau']:.3g}", (r['planner_calls'], m), fontsize=5.5,
                  xytext=(3, 2), textcoords='offset points')
  front = pareto_front(rows, 'return_median')
  ax.plot([r['planner_calls'] for r in front], [r['return_median'] for r in front], 'k--', lw=1,
          label='Pareto front (medians)')
  _finish_plot(fig, ax, 'planner calls per episode', 'episode return', path_pareto)
  plt.close(fig)
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for g in groups:
    sel = sorted([r for r in rows if _group(r) == g], key=lambda r: r['tau'])
    ax.plot([r['tau'] for r in sel], [r['fallback_rate'] for r in sel], 'o-', label=label(g))
  _finish_plot(fig, ax, 'tau', 'fallback replans per step', path_fallback)
  plt.close(fig)


def pareto_front(rows: Sequence[Dict[str, Any]], key: str = 'return_mean') -> List[Dict[str, Any]]:
  """Rows not dominated in (fewer planner calls, higher ``key``), sorted by calls."""
  front = []
  for r in sorted(rows, key=lambda r: (r['planner_calls'], -r[key])):
    if not front or r[key] > front[-1][key]:
      front.append(r)
  return front


def parse_perturbation(text: str) -> Optional[Dict[str, float]]:
  """'none' -> None; 'friction=0.7+mass=1.3' -> {'friction': 0.7, 'mass': 1.3}."""
  if text == 'none':
    return None
  scale = {}
  for part in text.split('+'):
    name, sep, value = part.partition('=')
    if not sep:
      raise ValueError(f"perturbation must look like 'mass=1.3' or 'none', got {text!r}")
    scale[name] = float(value)
  return scale


def host_share(seeds: Sequence[int], process_id: int, num_processes: int) -> List[int]:
  """The seeds one host of ``num_processes`` sweeps (round robin)."""
  if not 0 <= process_id < num_processes:
    raise ValueError(f'process_id {process_id} not in [0, {num_processes})')
  share = list(seeds)[process_id::num_processes]
  if not share:
    raise ValueError(f'{len(seeds)} seeds cannot be shared by {num_processes} hosts')
  return share


def run(cfg, export_dir: str, workdir: str) -> Dict[str, str]:
  """The sweep job behind launch/sweep.py on the export's backend (``extra['backend']``) or
  ``cfg.backend`` when set; the backend must be traced (``envs.names(envs.TRACED)``; a
  dm_control-trained agent is swept on 'mjx', the same task in Playground).

  Returns:
    The output paths {'csv', 'md', 'pareto'}.
  """
  import os
  from absl import logging
  from spec_jax import checkpoint
  from spec_jax import envs
  from spec_jax.envs import task_view
  replanning = resolve_replanning(cfg.get('replanning', 'auto'))
  if cfg.num_processes > 1:
    jax.distributed.initialize(cfg.coordinator, cfg.num_processes, cfg.process_id)
  model, params, pcfg, cors, meta = checkpoint.load_with_correctors(export_dir)
  extra = meta['extra']
  backend = envs.export_backend(extra, cfg.get('backend', ''))
  if envs.TRACED not in envs.backend(backend).capabilities:   # vmapped reset_one/step_one
    raise ValueError(f'sweeps need a traced backend, one of {list(envs.names(envs.TRACED))}; '
                     f'{backend!r} is not (set config backend, e.g. mjx: the same task in '
                     f'Playground)')
  if corr_lib.needs_corrector(cfg.mode) and cfg.mode not in cors:
    raise ValueError(f'mode {cfg.mode!r} needs a corrector; export has {sorted(cors)}')
  cor, cparams = cors.get(cfg.mode, (None, None))
  pairs = reporting.resolve_taus(tuple(cfg.taus), tuple(cfg.tau_quantiles),
                                 extra.get('mismatch_quantiles'))
  taus = jnp.array([t for t, _ in pairs])
  seeds = host_share(tuple(cfg.seeds), cfg.process_id, cfg.num_processes)
  keys = grid_keys(seeds, cfg.episodes)
  rows = []
  for pert in cfg.perturbations:
    env = envs.make(backend, cfg.task or extra['task'], need=envs.TRACED,
                    impl=cfg.get('impl', ''), action_repeat=extra['action_repeat'],
                    episode_length=cfg.episode_length or extra['episode_length'],
                    model_scale=parse_perturbation(pert))
    env, task = task_view.for_model(model, env, extra, cfg.get('task_id', -1), traced=True)
    for h in cfg.horizons:
      scfg = sp.SpecConfig(mode=cfg.mode, exec_len=int(h), history=cor.cfg.history if cor else 4)
      setup = SweepSetup(env, sp.Executor(model, pcfg, scfg, cor), task, replanning=replanning)
      stats, seconds = timed(sweep, setup, sp.ExecParams(params, cparams), taus, keys)
      new = summarize(stats, taus, int(h), cfg.mode, pert)
      for r, (_, tau_q) in zip(new, pairs):
        r.update(tau_q=tau_q, seconds=round(seconds, 2))
        if r['nonfinite']:
          logging.warning('tau %.4g horizon %d: non-finite inputs (safe action emitted) at %s',
                          r['tau'], h, r['nonfinite_envs'])
      rows += new
      logging.info('perturbation %s, horizon %d: %d episodes in %.1f s (compile included, '
                   '%s replanning)', pert, h, int(taus.size * keys.shape[0] * keys.shape[1]),
                   seconds, replanning)
  name = 'sweep' if cfg.num_processes == 1 else f'sweep_host{cfg.process_id}'
  base = os.path.join(workdir, name)
  os.makedirs(workdir, exist_ok=True)
  reporting.write_csv(rows, base + '.csv', COLUMNS)
  with open(base + '.md', 'w') as f:
    f.write(reporting.markdown_table(rows, COLUMNS))
  plot_sweep(rows, base + '_pareto.png', base + '_fallback.png')
  return dict(csv=base + '.csv', md=base + '.md', pareto=base + '_pareto.png')


COLUMNS = ('mode', 'exec_len', 'tau', 'tau_q', 'perturbation', 'episodes', 'return_mean',
           'return_std', 'return_median', 'return_q25', 'return_q75', 'planner_calls',
           'corrections', 'fallbacks', 'fallback_rate', 'nonfinite', 'nonfinite_envs', 'seconds')
