"""Planner latency and simulator throughput, side by side in one run.

  python benchmarks/bench_foundation.py [--repeats 5] [--mjx_steps 50] [--sizes 1 5]

Prints a markdown table: median ms per plan call (compile excluded), GFLOP per call counted
from the layer shapes (planner.plan_flops) and achieved GFLOP/s, for each model size at
batch 1 and batch 64 (humanoid dims: obs 67, action 21, official MPPI defaults: 512 samples,
8 iterations, horizon 3), and env steps/s for MJX (Playground HumanoidWalk, impl jax) at batch
1 and 64 against native dm_control humanoid-walk (physics steps counted, action repeat 2).
"""
import argparse
import os
import statistics
import time

os.environ.setdefault('MUJOCO_GL', 'disable')

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from spec_jax import config  # noqa: E402
from spec_jax import planner  # noqa: E402
from spec_jax import world_model  # noqa: E402
from spec_jax.envs import batch as env_batch  # noqa: E402
from spec_jax.envs import dmc  # noqa: E402
from spec_jax.envs import mjx  # noqa: E402


def timed_calls(fn, repeats):
  """(compile + first run s, median s of ``repeats`` further runs); fn(i) returns arrays."""
  t = time.perf_counter()
  jax.block_until_ready(fn(0))
  first = time.perf_counter() - t
  times = []
  for i in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(i + 1))
    times.append(time.perf_counter() - t)
  return first, statistics.median(times)


def _median_ms(fn, repeats):
  return 1e3 * timed_calls(fn, repeats)[1]


def planner_latency(size, batch, repeats):
  wm = world_model.WorldModel(config.model_config(size, 67, 21))
  params = wm.init(jax.random.PRNGKey(0))
  cfg = config.planner_config(21, 500)
  obs = jax.random.normal(jax.random.PRNGKey(1), (batch, 67))
  state = planner.PlannerState(prev_mean=jnp.zeros((batch, cfg.horizon, 21)))
  t0 = jnp.zeros((batch,), bool)
  fn = lambda i: planner.plan_batch(wm, params, cfg, state, obs, jax.random.PRNGKey(i), t0)[0]
  return _median_ms(fn, repeats)


def plan_gflop(size):
  """Matrix-multiply GFLOP of one humanoid plan call (planner.plan_flops)."""
  return planner.plan_flops(config.model_config(size, 67, 21), config.planner_config(21, 500)) / 1e9


def mjx_steps_per_s(batch, steps):
  env = mjx.MJXEnv('humanoid-walk', impl='jax')
  state = env.reset(jax.random.PRNGKey(0), batch)

  @jax.jit
  def run(state, key):
    def body(s, k):
      a = jax.random.uniform(k, (batch, 21), minval=-1, maxval=1)
      return env_batch.step_traced(env, s, a).state, None
    return jax.lax.scan(body, state, jax.random.split(key, steps))[0]

  jax.block_until_ready(run(state, jax.random.PRNGKey(0)))
  t = time.perf_counter()
  jax.block_until_ready(run(state, jax.random.PRNGKey(1)))
  return batch * steps * env.spec.action_repeat / (time.perf_counter() - t)


def dmc_steps_per_s(steps):
  env = dmc.DMCEnv('humanoid-walk', episode_length=10 ** 9)
  env.reset()
  rng = np.random.default_rng(0)
  t = time.perf_counter()
  for _ in range(steps):
    if env.step(rng.uniform(-1, 1, 21))[2]:
      env.reset()
  return steps * env.spec.action_repeat / (time.perf_counter() - t)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--sizes', type=int, nargs='+', default=(1, 5))
  parser.add_argument('--batches', type=int, nargs='+', default=(1, 64))
  parser.add_argument('--mjx_steps', type=int, default=50)
  parser.add_argument('--dmc_steps', type=int, default=1000)
  args = parser.parse_args()
  print(f'device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}')
  print('\n| model | batch | median ms / plan call | ms per env | GFLOP per env call | '
        'achieved GFLOP/s |\n|---|---|---|---|---|---|')
  for size in args.sizes:
    gflop = plan_gflop(size)
    for batch in args.batches:
      ms = planner_latency(size, batch, args.repeats)
      print(f'| {size}M | {batch} | {ms:.1f} | {ms / batch:.2f} | {gflop:.1f} | '
            f'{gflop * batch / (ms / 1e3):.0f} |', flush=True)
  native = dmc_steps_per_s(args.dmc_steps)
  print('\n| simulator | batch | physics steps/s | ratio to native |\n|---|---|---|---|')
  print(f'| dm_control (native MuJoCo, 1 core) | 1 | {native:.0f} | 1.00 |', flush=True)
  for batch in args.batches:
    sps = mjx_steps_per_s(batch, args.mjx_steps)
    print(f'| MJX Playground impl=jax | {batch} | {sps:.0f} | {sps / native:.2f} |', flush=True)


if __name__ == '__main__':
  main()
