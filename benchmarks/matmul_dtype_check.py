"""How far do bfloat16 matrix products (PlannerConfig.matmul_dtype) move a plan, measured
against the planner's own sampling noise? On states visited by the agent's own float32 planner
(seeded episode, eval mode, warm start carried), each state is planned three more times from a
cold start: float32 with key k, float32 with another key k', bfloat16 with key k. Prints the
distribution of ||a32(k) - a32(k')|| (two keys: MPPI's sampling spread) next to
||a32(k) - a16(k)|| (same draws, other arithmetic) for the first action. Then, per state, the
values of N sequences sampled around the plan's mean in both arithmetics: how many of the
float32 top-E elites bfloat16 also ranks top-E, and the value error relative to the values'
spread.

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
  pcfg = dataclasses.replace(pcfg, matmul_dtype='float32')   # whatever the export says
  extra = meta['extra']
  env = envs.make(envs.export_backend(extra, ''), extra['task'], need=envs.HOST,
                  action_repeat=extra['action_repeat'], episode_length=extra['episode_length'])
  fast = dataclasses.replace(pcfg, matmul_dtype='bfloat16')
  cold = planner.init_state(pcfg, model.cfg.action_dim)
  plan = lambda cfg, obs, key: planner.plan(model, params, cfg, cold, obs, key, True, True)[0]
  obs, state = jnp.asarray(env.reset(seed=args.seed)), cold
  spread, shift, states = [], [], []
  for t in range(args.states):
    k_run, k_a, k_b = jax.random.split(jax.random.PRNGKey(args.seed * 1000 + t), 3)
    a32, a32b, a16 = plan(pcfg, obs, k_a), plan(pcfg, obs, k_b), plan(fast, obs, k_a)
    spread.append(float(jnp.linalg.norm(a32.action - a32b.action)))
    shift.append(float(jnp.linalg.norm(a32.action - a16.action)))
    res, state = planner.plan(model, params, pcfg, state, obs, k_run, t == 0, True)
    states.append((res.latents[0], res.mean))
    obs, _, done, _ = env.step(np.asarray(res.action))
    obs = jnp.asarray(obs)
    if done:
      break
  q = lambda x: ' / '.join(f'{v:.3f}' for v in np.percentile(x, [10, 50, 90]))
  overlap, rel_err = _elite_overlap(model, params, pcfg, fast, states)
  print(f"{extra['task']}, {len(spread)} states, first action, 10th / 50th / 90th percentile:")
  print(f'  float32 key k vs float32 key k2 (sampling spread): {q(spread)}')
  print(f'  float32 key k vs bfloat16 key k (arithmetic):       {q(shift)}')
  print(f'  states where the arithmetic moves the action less than another key: '
        f'{np.mean(np.array(shift) < np.array(spread)):.0%}')
  print(f'value of {pcfg.num_samples} sampled sequences per state (std {pcfg.max_std} around '
        f'the plan), float32 vs bfloat16 products:')
  print(f'  top-{pcfg.num_elites} elites shared, 10th / 50th / 90th percentile: {q(overlap)}')
  print(f'  |v16 - v32| / std of v32 over the samples:           {q(rel_err)}')


def _elite_overlap(model, params, pcfg, fast, states):
  """Per state (z0, plan mean [H, A]): the share of the float32 top-E sequences that are also
  bfloat16's top-E, and the median value error relative to the values' spread."""
  _, sampling = planner.exact_and_sampling_models(model, fast)
  H, N, A = pcfg.horizon, pcfg.num_samples, model.cfg.action_dim
  overlap, rel_err = [], []
  for t, (z0, mean) in enumerate(states):
    k_act, k_pi = jax.random.split(jax.random.PRNGKey(t))
    acts = jnp.clip(mean[:, None] + pcfg.max_std * jax.random.normal(k_act, (H, N, A)), -1, 1)
    eps, z = jax.random.normal(k_pi, (N, A)), jnp.broadcast_to(z0, (N, z0.shape[0]))
    v32, v16 = (planner.estimate_value(m, params, pcfg, z, acts, eps, jnp.array([0, 1]))
                for m in (model, sampling))
    top = lambda v: set(np.argsort(-np.asarray(v))[:pcfg.num_elites].tolist())
    overlap.append(len(top(v32) & top(v16)) / pcfg.num_elites)
    rel_err.append(float(jnp.median(jnp.abs(v16 - v32)) / (jnp.std(v32) + 1e-9)))
  return overlap, rel_err


if __name__ == '__main__':
  main()
