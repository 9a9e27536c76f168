"""Accelerator benchmark in one command (issue 15): planner latency, one update epoch, MJX
throughput alone and with planning in the loop, and the vectorised sweep against the loop.

  python benchmarks/bench_gpu.py                       # GPU sizes (minutes on an H100)
  python benchmarks/bench_gpu.py --smoke               # tiny sizes: checks the script on a CPU

Each section prints a markdown table as it finishes and is independent: an error in one is
printed and the next one runs. ``--budget_s`` skips sections that would start after it.
Humanoid dims (obs 67, action 21) and the official MPPI defaults (512 samples, 8 iterations,
horizon 3, 64 elites, 24 policy trajectories) unless --smoke.
Lists are space-separated (``--sections sweep collect --sizes 1 5``).
"""
import argparse
import os
import subprocess
import sys
import time
import traceback

os.environ.setdefault('MUJOCO_GL', 'disable')

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_foundation  # noqa: E402  (planner latency and timing helpers)

from spec_jax import agent  # noqa: E402
from spec_jax import config  # noqa: E402
from spec_jax import planner  # noqa: E402
from spec_jax import replay  # noqa: E402
from spec_jax import trainer  # noqa: E402
from spec_jax import world_model  # noqa: E402
from spec_jax.envs import batch as env_batch  # noqa: E402

_T0 = time.time()


def section_planner(args):
  print('\n### Planner latency (plan_batch, official MPPI defaults)\n')
  print('| model | batch | median ms / plan call | ms per env | achieved TFLOP/s |\n'
        '|---|---|---|---|---|')
  for size in args.sizes:
    gflop = bench_foundation.plan_gflop(size)
    for batch in args.plan_batches:
      ms = bench_foundation.planner_latency(size, batch, args.repeats)
      print(f'| {size}M | {batch} | {ms:.2f} | {ms / batch:.4f} | '
            f'{gflop * batch / ms:.2f} |', flush=True)


def section_update(args):
  """One jitted epoch of TD-MPC2 updates (horizon 3) on a random buffer."""
  print(f'\n### Update step (agent.update_epoch, batch {args.update_batch}, horizon 3)\n')
  print('| model | updates per epoch | compile s | ms per update |\n|---|---|---|---|')
  for size in args.sizes:
    wm = world_model.WorldModel(config.model_config(size, 67, 21))
    tcfg = agent.TrainConfig(batch_size=args.update_batch)
    state = agent.init_train_state(wm, tcfg, jax.random.PRNGKey(0))
    buf = replay.init(4, 2000, 67, 21)
    steps = 1000
    rng = np.random.default_rng(0)
    buf = replay.add_sequence(buf, jnp.asarray(rng.normal(size=(steps, 4, 67)), jnp.float32),
                              jnp.asarray(rng.uniform(-1, 1, (steps, 4, 21)), jnp.float32),
                              jnp.asarray(rng.normal(size=(steps, 4)), jnp.float32),
                              jnp.tile(jnp.arange(4, dtype=jnp.int32), (steps, 1)))
    n = args.update_epoch
    fn = lambda i: agent.update_epoch(wm, tcfg, state, buf, jax.random.PRNGKey(i), n)[1]
    first, med = bench_foundation.timed_calls(fn, max(1, args.repeats // 2))
    print(f'| {size}M | {n} | {first:.1f} | {1e3 * med / n:.2f} |', flush=True)


def _mjx_env(task, impl):
  from spec_jax.envs import mjx
  return mjx.MJXEnv(task, impl=impl)


def section_mjx(args):
  print(f'\n### MJX {args.task} (Playground): physics steps/s, random actions\n')
  print('| impl | batch | compile s | physics steps/s | agent steps/s |\n|---|---|---|---|---|')
  for impl in args.impls:
    try:
      env = _mjx_env(args.task, impl)
    except Exception as e:  # noqa: BLE001  (warp may be absent)
      print(f'| {impl} | - | - | unavailable: {type(e).__name__}: {str(e)[:120]} | - |', flush=True)
      continue
    A, steps = env.spec.action_dim, args.mjx_steps

    @jax.jit
    def run(state, key):
      def body(s, k):
        a = jax.random.uniform(k, s.obs.shape[:1] + (A,), minval=-1, maxval=1)
        return env_batch.step_traced(env, s, a).state, None
      return jax.lax.scan(body, state, jax.random.split(key, steps))[0].obs

    for batch in args.env_batches:
      state = env.reset(jax.random.PRNGKey(0), batch)
      first, med = bench_foundation.timed_calls(lambda i, state=state: run(state, jax.random.PRNGKey(i)), 2)
      agent_sps = batch * steps / med
      print(f'| {impl} | {batch} | {first:.1f} | {agent_sps * env.spec.action_repeat:.0f} | '
            f'{agent_sps:.0f} |', flush=True)


def section_collect(args):
  """Planning in the loop: trainer._mjx_collect (plan_batch + env step, one jit per chunk)."""
  print(f'\n### MJX {args.task} with planning in the loop (trainer collection chunk)\n')
  print('| impl | model | batch | compile s | agent steps/s | ms per vector step |\n'
        '|---|---|---|---|---|---|')
  impl = args.impls[0]
  env = _mjx_env(args.task, impl)
  steps = args.collect_steps
  for size in args.collect_sizes:
    wm = world_model.WorldModel(config.model_config(size, env.spec.obs_dim, env.spec.action_dim))
    params = wm.init(jax.random.PRNGKey(0))
    pcfg = _planner_cfg(args, env.spec.action_dim)
    for batch in args.collect_batches:
      state = env.reset(jax.random.PRNGKey(0), batch)
      pstate = planner.init_state(pcfg, env.spec.action_dim)
      pstate = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (batch,) + x.shape), pstate)
      ids = jnp.zeros((batch,), jnp.int32)
      fn = lambda i: trainer._mjx_collect(env, wm, pcfg, params, state, pstate, ids,  # noqa
                                          jax.random.PRNGKey(i), steps, False, None,
                                          jnp.inf)[1]['reward']
      first, med = bench_foundation.timed_calls(fn, 2)
      print(f'| {impl} | {size}M | {batch} | {first:.1f} | '
            f'{batch * steps / med:.0f} | {1e3 * med / steps:.1f} |', flush=True)


def _planner_cfg(args, action_dim):
  if args.smoke:
    return config.PlannerConfig(num_samples=32, iterations=2, num_elites=4, num_pi_trajs=4)
  return config.planner_config(action_dim, 500)


def section_sweep(args):
  print('\n### Vectorised sweep vs point-by-point loop (benchmarks/bench_sweep.py)\n')
  cmd = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'bench_sweep.py'),
         '--batches', *map(str, args.sweep_batches),
         '--episode_length', str(args.sweep_episode_length),
         '--skip_vmap']
  print('    ' + ' '.join(cmd[1:]), flush=True)
  # The parent holds JAX's default GPU memory reservation: let the child allocate on demand.
  subprocess.run(cmd, check=True, env=dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE='false'))


_SECTIONS = dict(planner=section_planner, update=section_update, mjx=section_mjx,
                 collect=section_collect, sweep=section_sweep)


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--smoke', action='store_true', help='tiny sizes for a CPU check')
  p.add_argument('--sections', nargs='+', choices=tuple(_SECTIONS), default=tuple(_SECTIONS))
  p.add_argument('--budget_s', type=float, default=1e9)
  p.add_argument('--task', default='humanoid-walk')
  p.add_argument('--sizes', type=int, nargs='+', default=(1, 5))
  p.add_argument('--plan_batches', type=int, nargs='+', default=(1, 64, 1024))
  p.add_argument('--repeats', type=int, default=5)
  p.add_argument('--update_batch', type=int, default=256)
  p.add_argument('--update_epoch', type=int, default=200)
  p.add_argument('--impls', nargs='+', default=('jax', 'warp'))
  p.add_argument('--env_batches', type=int, nargs='+', default=(1024, 4096, 8192))
  p.add_argument('--mjx_steps', type=int, default=50)
  p.add_argument('--collect_sizes', type=int, nargs='+', default=(5,))
  p.add_argument('--collect_batches', type=int, nargs='+', default=(64, 256, 1024))
  p.add_argument('--collect_steps', type=int, default=10)
  p.add_argument('--sweep_batches', type=int, nargs='+', default=(16, 64, 256))
  p.add_argument('--sweep_episode_length', type=int, default=50)
  args = p.parse_args()
  if args.smoke:
    for k, v in dict(sizes=(1,), plan_batches=(1, 4), repeats=1, update_batch=16, update_epoch=5,
                     impls=('jax',), env_batches=(2,), mjx_steps=2, collect_sizes=(1,),
                     collect_batches=(2,), collect_steps=2, sweep_batches=(4,),
                     sweep_episode_length=6, task='cartpole-swingup').items():
      setattr(args, k, v)
  print(f'device: {jax.devices()[0].device_kind} ({jax.default_backend()}, '
        f'{jax.local_device_count()} device(s)); jax {jax.__version__}; '
        f'XLA_FLAGS={os.environ.get("XLA_FLAGS", "")!r}', flush=True)
  for name in args.sections:
    if time.time() - _T0 > args.budget_s:
      print(f'\n(section {name} skipped: past --budget_s {args.budget_s:.0f})', flush=True)
      continue
    t = time.time()
    try:
      _SECTIONS[name](args)
    except Exception:  # noqa: BLE001  (report and go on to the next section)
      print(f'\nsection {name} FAILED:\n{traceback.format_exc()}', flush=True)
    print(f'\n(section {name}: {time.time() - t:.0f} s; total {time.time() - _T0:.0f} s)',
          flush=True)


if __name__ == '__main__':
  main()
