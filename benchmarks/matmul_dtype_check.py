"""How far do bfloat16 matrix products (PlannerConfig.matmul_dtype) move a plan, measured
against the planner's own sampling noise? On states visited by the agent's own float32 planner
(seeded episode, eval mode, warm start carried), each state is planned three more times from a
cold start: float32 with key k, float32 with another key k', bfloat16 with key k. Prints the
distribution of ||a32(k) - a32(k')|| (two keys: MPPI's sampling spread) next to
||a32(k) - a16(k)|| (same draws, other arithmetic) for the first action.

  python benchmarks/matmul_dtype_check.py --export agents/walker-run --states 100
"""
import argparse
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from spec_jax import checkpoint
from spec_jax import envs
from spec_jax import planner


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--export', required=True)
  p.add_argument('--states', type=int, default=100)
  p.add_argument('--seed', type=int, default=900)
  args = p.parse_args()
  model, params, pcfg, meta = checkpoint.load_agent(args.export)
  extra = meta['extra']
  env = envs.make(envs.export_backend(extra, ''), extra['task'], need=envs.HOST,
                  action_repeat=extra['action_repeat'], episode_length=extra['episode_length'])
  fast = dataclasses.replace(pcfg, matmul_dtype='bfloat16')
  cold = planner.init_state(pcfg, model.cfg.action_dim)
  plan = lambda cfg, obs, key: planner.plan(model, params, cfg, cold, obs, key, True, True)[0]
  obs, state = jnp.asarray(env.reset(seed=args.seed)), cold
  spread, shift = [], []
  for t in range(args.states):
    k_run, k_a, k_b = jax.random.split(jax.random.PRNGKey(args.seed * 1000 + t), 3)
    a32, a32b, a16 = plan(pcfg, obs, k_a), plan(pcfg, obs, k_b), plan(fast, obs, k_a)
    spread.append(float(jnp.linalg.norm(a32.action - a32b.action)))
    shift.append(float(jnp.linalg.norm(a32.action - a16.action)))
    res, state = planner.plan(model, params, pcfg, state, obs, k_run, t == 0, True)
    obs, _, done, _ = env.step(np.asarray(res.action))
    obs = jnp.asarray(obs)
    if done:
      break
  q = lambda x: ' / '.join(f'{v:.3f}' for v in np.percentile(x, [10, 50, 90]))
  print(f"{extra['task']}, {len(spread)} states, first action, 10th / 50th / 90th percentile:")
  print(f'  float32 key k vs float32 key k2 (sampling spread): {q(spread)}')
  print(f'  float32 key k vs bfloat16 key k (arithmetic):       {q(shift)}')
  print(f'  states where the arithmetic moves the action less than another key: '
        f'{np.mean(np.array(shift) < np.array(spread)):.0%}')


if __name__ == '__main__':
  main()
