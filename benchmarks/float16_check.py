"""float16 storage check for a shipped agent: plans with the float32 world model (the training
export) and with the float16-stored one on the same observations and keys; prints the largest
and median action differences.

  python benchmarks/float16_check.py --f32 runs/walker_walk/export --f16 agents/walker-walk
"""
import argparse

import jax
import jax.numpy as jnp
import numpy as np

from spec_jax import checkpoint
from spec_jax import planner
from spec_jax.envs import dmc


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--f32', required=True)
  p.add_argument('--f16', required=True)
  p.add_argument('--states', type=int, default=20)
  args = p.parse_args()
  model, p32, pcfg, meta = checkpoint.load_agent(args.f32)
  _, p16, _, meta16 = checkpoint.load_agent(args.f16)
  extra = meta['extra']
  env = dmc.DMCEnv(extra['task'], seed=7, action_repeat=extra['action_repeat'])
  obs, diffs, rng = env.reset(), [], np.random.default_rng(0)
  for t in range(args.states):   # states along a random-action trajectory
    key = jax.random.PRNGKey(t)
    a32, _ = planner.plan(model, p32, pcfg, planner.init_state(pcfg, model.cfg.action_dim),
                          jnp.asarray(obs), key, True, True)
    a16, _ = planner.plan(model, p16, pcfg, planner.init_state(pcfg, model.cfg.action_dim),
                          jnp.asarray(obs), key, True, True)
    diffs.append(float(jnp.max(jnp.abs(a32.action - a16.action))))
    obs = env.step(rng.uniform(-1, 1, model.cfg.action_dim))[0]
  print(f"{extra['task']}: storage {meta16['storage_dtype']}; max |a32 - a16| over "
        f"{args.states} states: median {np.median(diffs):.4f}, 90th pct "
        f"{np.percentile(diffs, 90):.4f}, max {np.max(diffs):.4f}")


if __name__ == '__main__':
  main()
