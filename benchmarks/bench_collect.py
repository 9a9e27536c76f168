"""Speculative batched collection (issue 11.2): the trainer's traced-backend collection
(``trainer._mjx_collect``) planning every environment at every step (``plan_batch``, as
TD-MPC2) against speculative collection (``collect_exec_len`` E > 1: ``step_batch_compact``
plans only the environments that replan), side by side in one run, on the same environments
and weights.

  python benchmarks/bench_collect.py [--env fake|mjx] [--num_envs 16] [--steps 24]
      [--exec_len 3] [--episode_length 50]

Rows: plan every step; E without a gate (tau = inf: open loop, replans at queue ends and
episode starts); E with tau at the median of the mismatch that open-loop row measured
(desynchronised replans); E with tau = 0 (every env replans every step: the compaction's
overhead). Columns: share of agent steps (decisions) that plan, planner rows executed (compaction pads
to the next capacity) per agent step, collection time per vector step and the speed-up over planning
every step. A random-weight 1M model (non-zero reward and Q heads), 256 x 4 MPPI; the first
call of each row compiles and is not timed. Speeds only: what speculative data does to
learning is not measured here.
"""
import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from spec_jax import builders
from spec_jax import config
from spec_jax import planner
from spec_jax import speculation as sp
from spec_jax import trainer
from spec_jax import world_model


def _toy():
  import os
  import sys
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  'tests'))
  import toy
  return toy


def _env(args):
  if args.env == 'mjx':
    from spec_jax.envs import mjx
    return mjx.MJXEnv('cartpole-swingup', impl='jax', episode_length=args.episode_length)
  return _toy().FakeJaxEnv(episode_length=args.episode_length)


def _run(env, model, pcfg, params, ex, tau, args, repeats=2):
  """(records, median seconds per vector step) of ``args.steps`` collection steps."""
  B = args.num_envs
  env_state = trainer.batch.reset(env, jax.random.PRNGKey(0), B)
  if ex is None:
    state = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (B,) + x.shape),
                                   planner.init_state(pcfg, model.cfg.action_dim))
  else:
    state = sp.batch_state(sp.init_state(ex), B)
  ids = jnp.ones((B,), jnp.int32)
  call = lambda: trainer._mjx_collect(env, model, pcfg, params, env_state, state, ids,
                                      jax.random.PRNGKey(1), args.steps, False, ex,
                                      jnp.float32(tau))
  out = jax.block_until_ready(call())       # compile
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    out = jax.block_until_ready(call())
    times.append(time.perf_counter() - t)
  return jax.device_get(out[1]), float(np.median(times)) / args.steps


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('--env', default='fake', choices=('fake', 'mjx'))
  p.add_argument('--num_envs', type=int, default=16)
  p.add_argument('--steps', type=int, default=24)
  p.add_argument('--exec_len', type=int, default=3)
  p.add_argument('--episode_length', type=int, default=50)
  args = p.parse_args()
  env = _env(args)
  model = world_model.WorldModel(config.model_config(1, env.spec.obs_dim, env.spec.action_dim))
  params = _toy().nonzero_heads(model.init(jax.random.PRNGKey(0)))
  pcfg = config.PlannerConfig(num_samples=256, iterations=4, num_elites=32, num_pi_trajs=16)
  ex = trainer.collect_executor(model, pcfg, builders.RunConfig(collect_exec_len=args.exec_len))
  B = args.num_envs
  rows = [('plan every step (plan_batch)', None, 0.0)]
  rows.append((f'E = {args.exec_len}, no gate (tau = inf)', ex, float('inf')))
  plain = None
  print(f'{args.env}, B = {B}, {args.steps} vector steps, 1M model, 256 x 4 MPPI, '
        f'devices {jax.local_devices()}')
  print('| collection | agent steps that plan | planner rows executed / agent step | ms / vector step '
        '| speed-up |\n|---|---|---|---|---|')
  i = 0
  while i < len(rows):
    name, e, tau = rows[i]
    recs, sec = _run(env, model, pcfg, params, e, tau, args)
    planned = np.asarray(recs['planned'])
    executed = (B * args.steps if e is None else
                sum(sp.executed_plans(int(n), B) for n in planned.sum(1)))
    plain = plain or sec
    print(f'| {name} | {planned.mean():.2f} | {executed / (B * args.steps):.2f} | '
          f'{1e3 * sec:.0f} | {plain / sec:.2f}x |', flush=True)
    if i == 1:   # the median open-loop mismatch at queued steps: desynchronised replans
      d = np.asarray(recs['mismatch'])[~planned]
      q50 = float(np.median(d))
      rows += [(f'E = {args.exec_len}, tau = {q50:.3g} (median open-loop mismatch)', ex, q50),
               (f'E = {args.exec_len}, tau = 0 (all replan)', ex, 0.0)]
    i += 1


if __name__ == '__main__':
  main()
