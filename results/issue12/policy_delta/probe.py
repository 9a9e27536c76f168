"""Offline probe (issue 12.1, session 15): how close is each correction of the pipelined
executor's speculative action to the teacher's action? Pipelined tuples (E = 1, lead 1) from
teacher rollouts of the shipped walker-run agent (seeds 900.., not evaluation seeds); errors
against a teacher plan from the real observation, and against a SECOND independent teacher
plan (the label noise floor).

  XLA_FLAGS=--xla_cpu_multi_thread_eigen=false python results/issue12/policy_delta/probe.py
"""
import dataclasses, sys
import numpy as np, jax, jax.numpy as jnp
from spec_jax import checkpoint, distill, envs, planner as pl

EPISODES = int(sys.argv[1]) if len(sys.argv) > 1 else 2
model, params, pcfg, cors, meta = checkpoint.load_with_correctors('agents/walker-run')
extra = meta['extra']
pcfg = dataclasses.replace(pcfg, horizon=6)
env = envs.make(envs.export_backend(extra, ''), extra['task'], need=envs.HOST,
                action_repeat=extra['action_repeat'], episode_length=extra['episode_length'])
env.reset(seed=900)
data, stats = distill.collect(model, params, pcfg, env, EPISODES, jax.random.PRNGKey(900),
                              history=cors['mlp'][0].cfg.history, teacher_prob=0.5,
                              log_fn=print, pipelined=True)
print(stats)
pi_mean = jax.jit(lambda z: model.pi(params, z, jax.random.PRNGKey(0))[1].mean)
cor, cparams = cors['mlp']
mlp = jax.vmap(lambda h, v, a: cor.correct(cparams, h, v, a))(data.history, data.valid, data.a_spec)
delta = jnp.clip(data.a_spec + pi_mean(data.z_real) - pi_mean(data.z_hat), -1, 1)
both = jnp.clip(mlp + pi_mean(data.z_real) - pi_mean(data.z_hat), -1, 1)
cands = dict(uncorrected=data.a_spec, mlp=mlp, policy_delta=delta, mlp_plus_delta=both,
             policy_prior=pi_mean(data.z_real), half_delta=jnp.clip(
                 data.a_spec + 0.5 * (pi_mean(data.z_real) - pi_mean(data.z_hat)), -1, 1))
mse = lambda a: float(jnp.mean(jnp.sum((a - data.a_teacher) ** 2, -1)))
for n, a in cands.items():
  print(f'{n:16s} MSE vs teacher {mse(a):.4f}')
