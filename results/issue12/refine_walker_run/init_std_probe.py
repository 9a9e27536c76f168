import dataclasses, time, numpy as np, jax, jax.numpy as jnp
from spec_jax import checkpoint, envs, planner as pl
model, params, pcfg, cors, meta, heads = checkpoint.load_with_correctors('agents/walker-run', with_acceptance=True)
extra = meta['extra']
pcfg = dataclasses.replace(pcfg, horizon=6)
print(pcfg)
env = envs.make(envs.export_backend(extra, ''), extra['task'], need=envs.HOST, action_repeat=extra['action_repeat'], episode_length=extra['episode_length'])
obs = env.reset(seed=900); st = pl.init_state(pcfg, model.cfg.action_dim); key = jax.random.PRNGKey(900)
stds, means = [], []
for t in range(200):
  key, k = jax.random.split(key)
  res, st = pl.plan(model, params, pcfg, st, jnp.asarray(obs), k, t == 0, True)
  stds.append(np.asarray(res.std)); obs, r, done, *_ = env.step(np.asarray(res.action))
  if done: break
S = np.stack(stds[5:])
print('final std[0] quantiles (per action dim pooled) 10/50/90:', np.quantile(S[:, 0], [.1, .5, .9]).round(3))
print('final std all h, median per h:', np.median(S, axis=(0, 2)).round(3))
z = model.encode(params, jnp.asarray(obs))
cfgs = dict(full=pcfg, r32=dataclasses.replace(pcfg, iterations=1, num_samples=32, num_elites=4, num_pi_trajs=4, init_std=0.2),
            r64=dataclasses.replace(pcfg, iterations=1, num_samples=64, num_elites=8, num_pi_trajs=8, init_std=0.2))
f = {n: jax.jit(lambda z, k, s, c=c: pl.plan_from_latent(model, params, c, s, z, k, False, True)[0].action) for n, c in cfgs.items()}
for n in f: f[n](z, key, st).block_until_ready()
T = {n: [] for n in f}
for i in range(30):
  for n in f:
    s = time.perf_counter(); f[n](z, key, st).block_until_ready(); T[n].append(1e3 * (time.perf_counter() - s))
for n in f: print(n, 'median ms', round(float(np.median(T[n])), 2))
