"""Sweep throughput: the vectorised grid with compacted and with sequential replanning
(``sweep.sweep``, ``SweepSetup.replanning``) against the
same grid run point by point in a Python loop (one jitted episode per call), and against the
older batch-level shared cond and plain jit(vmap), side by side in one run, at several batch
sizes B (= taus x seeds x episodes) with desynchronised replans (taus spread over 0.05..1).

  python benchmarks/bench_sweep.py [--export DIR] [--batches 16 64 256] [--episode_length 50]
      [--skip_shared] [--skip_vmap]

Reports planner evaluations executed by the batch vs replans needed (compaction pads to the
next capacity: the ratio should approach 1; sequential replanning plans exactly the needed
ones), and the speed-up over the loop. Without --export
a random-weight 1M model on an in-JAX fake environment (obs 5, action 1) is used unless
--env mjx is given (Playground cartpole-swingup).
"""
import argparse
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from spec_jax import checkpoint
from spec_jax import config
from spec_jax import speculation as sp
from spec_jax import sweep
from spec_jax import world_model


def _agent(args):
  if args.export:
    model, params, pcfg, cors, meta = checkpoint.load_with_correctors(args.export)
    cor, cparams = cors.get(args.mode, (None, None))
    return meta['extra']['task'], model, params, pcfg, cor, cparams
  model = world_model.WorldModel(config.model_config(1, 5, 1))
  pcfg = config.PlannerConfig(num_samples=256, iterations=4, num_elites=32, num_pi_trajs=16)
  # Non-zero reward and Q heads: with zero ones every sample ties, the elites are picked by
  # float rounding, which batching changes, and the runners would diverge.
  params = _toy().nonzero_heads(model.init(jax.random.PRNGKey(0)))
  return 'cartpole-swingup', model, params, pcfg, None, None


def _toy():
  """tests/toy.py: the in-JAX fake environment and model helpers the tests use."""
  import os
  import sys
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  'tests'))
  import toy
  return toy


def _env(args, task):
  if args.env == 'mjx':
    from spec_jax.envs import mjx
    return mjx.MJXEnv(task, impl=args.impl, episode_length=args.episode_length)
  return _toy().FakeJaxEnv(episode_length=args.episode_length)


def _shared_rollout(setup, params, taus, keys):
  """The previous runner: one batch-level cond (plans all B whenever any replans)."""
  orig = sweep.REPLANNING['compact']
  sweep.REPLANNING['compact'] = sp.step_batch_shared
  try:
    return sweep._rollout(setup, params, taus, keys)  # pylint: disable=protected-access
  finally:
    sweep.REPLANNING['compact'] = orig


def _row(name, B, run_s, loop_s, out, loop, args):
  needed = float(np.sum(np.asarray(out.planner_calls)))
  executed = float(np.sum(np.asarray(out.plan_evals))) if name.startswith(
      ('compact', 'sequential')) else float('nan')
  dret = float(jnp.max(jnp.abs(out.ret - loop.ret)))
  return (f'| {B} | {name} | {run_s:.2f} | {B * args.episode_length / run_s:.0f} | '
          f'{loop_s / run_s:.2f} | {needed:.0f} | {executed:.0f} | {executed / needed:.2f} | '
          f'{dret:.2g} |')


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--export', default='')
  p.add_argument('--mode', default='spec')
  p.add_argument('--env', default='fake', choices=('fake', 'mjx'))
  p.add_argument('--batches', type=int, nargs='+', default=(16, 64))
  p.add_argument('--episode_length', type=int, default=50)
  p.add_argument('--exec_len', type=int, default=3)
  p.add_argument('--impl', default='jax')
  p.add_argument('--skip_vmap', action='store_true')
  p.add_argument('--skip_shared', action='store_true', help='leave out the shared-cond runner')
  p.add_argument('--tau_range', type=float, nargs=2, default=None,
                 help='lo hi of the tau grid; default 1.8 2.1 for the random model (its '
                      'mismatch spans about 1.8-2.1), 0.05 1.0 with --export')
  args = p.parse_args()
  task, model, params, pcfg, cor, cparams = _agent(args)
  mode = args.mode if cor is not None or args.mode in ('spec', 'baseline') else 'spec'
  ex = sp.Executor(model, pcfg, sp.SpecConfig(mode=mode, exec_len=args.exec_len), cor)
  setup = sweep.SweepSetup(_env(args, task), ex)
  params = sp.ExecParams(params, cparams)
  print(f'device: {jax.devices()[0].device_kind} ({jax.default_backend()}, '
        f'{len(jax.local_devices())} device(s)); task {task} ({args.env}); mode {mode}; '
        f'episodes of {args.episode_length} steps; planner {pcfg.num_samples}x{pcfg.iterations}, '
        f'H={args.exec_len}')
  print('\n| B | runner | run s | env steps/s | speed-up vs loop | replans needed | '
        'planner evals executed | executed/needed | max |return diff| vs loop |\n'
        '|---|---|---|---|---|---|---|---|---|')
  shared = jax.jit(_shared_rollout, static_argnums=0)
  for B in args.batches:
    lo, hi = args.tau_range or ((0.05, 1.0) if args.export else (1.8, 2.1))
    taus = jnp.linspace(lo, hi, B // 2)              # desynchronised replans
    keys = sweep.grid_keys([0], 2)
    sweep.timed(sweep._single_episode, setup, params, taus[0], keys[0, 0])  # compile
    loop, loop_s = sweep.timed(sweep.sweep_loop, setup, params, taus, keys)
    flat = lambda x: x.reshape(-1)
    loop_flat = jax.tree_util.tree_map(flat, loop)
    rows = [f'| {B} | point-by-point loop | {loop_s:.2f} | '
            f'{B * args.episode_length / loop_s:.0f} | 1.00 | '
            f'{float(np.sum(np.asarray(loop.planner_calls))):.0f} | - | - | 0 |']
    seq_setup = dataclasses.replace(setup, replanning='sequential')
    runners = [('compact (sweep.sweep)', sweep.sweep),
               ('sequential (sweep.sweep)', lambda s, *a: sweep.sweep(seq_setup, *a))]
    tau_b = jnp.repeat(taus, 2)
    keys_b = jnp.tile(keys.reshape(2, -1), (taus.shape[0], 1))
    if not args.skip_shared:
      runners.append(('shared cond', lambda s, pp, t, k: shared(s, pp, tau_b, keys_b)))
    if not args.skip_vmap:
      runners.append(('plain jit(vmap)', sweep.sweep_vmap))
    for name, fn in runners:
      sweep.timed(fn, setup, params, taus, keys)  # compile + first run
      out, run_s = sweep.timed(fn, setup, params, taus, keys)
      out = jax.tree_util.tree_map(flat, out)
      rows.append(_row(name, B, run_s, loop_s, out, loop_flat, args))
    print('\n'.join(rows), flush=True)


if __name__ == '__main__':
  main()
