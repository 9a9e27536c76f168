"""Sweep throughput: the vectorised grid (one jit per horizon) against the same grid run point
by point in a Python loop (one jitted episode per call), side by side in one run.

  python benchmarks/bench_sweep.py [--export DIR] [--taus 0.1,0.3,0.5,1.0] [--seeds 0,1]
      [--episodes 2] [--episode_length 100]

Without --export a random-weight 1M model on Playground cartpole-swingup is used (throughput
does not depend on the weights beyond the replan rate, which is reported).
"""
import argparse

import jax
import jax.numpy as jnp

from spec_jax import checkpoint
from spec_jax import config
from spec_jax import speculation as sp
from spec_jax import sweep
from spec_jax import world_model
from spec_jax.envs import mjx


def _agent(args):
  if args.export:
    model, params, pcfg, cors, meta = checkpoint.load_with_correctors(args.export)
    cor, cparams = cors.get(args.mode, (None, None))
    return meta['extra']['task'], model, params, pcfg, cor, cparams
  model = world_model.WorldModel(config.model_config(1, 5, 1))
  pcfg = config.PlannerConfig(num_samples=256, iterations=4, num_elites=32, num_pi_trajs=16)
  return 'cartpole-swingup', model, model.init(jax.random.PRNGKey(0)), pcfg, None, None


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--export', default='')
  p.add_argument('--mode', default='spec')
  p.add_argument('--taus', default='0.1,0.3,0.5,1.0')
  p.add_argument('--seeds', default='0,1')
  p.add_argument('--episodes', type=int, default=2)
  p.add_argument('--episode_length', type=int, default=100)
  p.add_argument('--exec_len', type=int, default=3)
  p.add_argument('--impl', default='jax')
  args = p.parse_args()
  task, model, params, pcfg, cor, cparams = _agent(args)
  mode = args.mode if cor is not None or args.mode in ('spec', 'baseline') else 'spec'
  env = mjx.MJXEnv(task, impl=args.impl, episode_length=args.episode_length)
  setup = sweep.SweepSetup(env, model, pcfg, sp.SpecConfig(mode=mode, exec_len=args.exec_len), cor)
  taus = jnp.array([float(t) for t in args.taus.split(',')])
  keys = sweep.grid_keys([int(s) for s in args.seeds.split(',')], args.episodes)
  n_eps = int(taus.size * keys.shape[0] * keys.shape[1])
  n_steps = n_eps * args.episode_length
  one = lambda: sweep._single_episode(setup, params, cparams, taus[0], keys[0, 0])  # pylint: disable=protected-access
  _, loop_compile = sweep.timed(one)
  loop, loop_s = sweep.timed(sweep.sweep_loop, setup, params, cparams, taus, keys)
  runs = [('point-by-point loop (jit per episode)', loop_compile, loop_s, loop)]
  for name, fn in (('vectorised, shared cond (sweep)', sweep.sweep),
                   ('vectorised, jit(vmap^3) (sweep_vmap)', sweep.sweep_vmap)):
    _, compile_s = sweep.timed(fn, setup, params, cparams, taus, keys)
    out, run_s = sweep.timed(fn, setup, params, cparams, taus, keys)
    runs.append((name, compile_s, run_s, out))
  print(f'device: {jax.devices()[0].device_kind} ({jax.default_backend()}); task {task}; '
        f'mode {mode}; grid {taus.size} taus x {keys.shape[0]} seeds x {keys.shape[1]} episodes '
        f'= {n_eps} episodes of {args.episode_length} steps; planner {pcfg.num_samples}x'
        f'{pcfg.iterations}; mean planner calls/episode {float(loop.planner_calls.mean()):.1f}')
  print('\n| runner | compile s (incl. first run) | run s | episodes/s | env steps/s | speed-up vs loop '
        '| max |return diff| vs loop | max |calls diff| vs loop |\n|---|---|---|---|---|---|---|---|')
  for name, compile_s, run_s, out in runs:
    dret = float(jnp.max(jnp.abs(out.ret - loop.ret)))
    dcalls = int(jnp.max(jnp.abs(out.planner_calls - loop.planner_calls)))
    print(f'| {name} | {compile_s:.1f} | {run_s:.2f} | {n_eps / run_s:.2f} | {n_steps / run_s:.0f} '
          f'| {loop_s / run_s:.2f} | {dret:.3g} | {dcalls} |')


if __name__ == '__main__':
  main()
