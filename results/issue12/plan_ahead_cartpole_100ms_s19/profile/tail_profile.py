"""Diagnostic (session 19, not a result): which paced decisions of the shipped cartpole agent are slow,
and was the plan they were offered already made? Args: period_ms steps exec_len."""
import os, sys, time
os.environ['XLA_FLAGS'] = os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=3'
import jax, numpy as np
from spec_jax import checkpoint, evaluation as ev, speculation as sp, envs
model, params, pcfg, cors, meta, heads = checkpoint.load_with_correctors('agents/cartpole-mjx', with_acceptance=True)
extra = meta['extra']
E = int(sys.argv[3])
pts = ev.grid([dict(modes=('mlp',), exec_lens=(E,), taus=(), tau_quantiles=(0.5,), plan_ahead=True, ahead_lead=1, on_reject='defer')], extra['mismatch_quantiles'], baseline=False)
p = pts[0]
ex, cparams, hparams = ev.executor_for(p, model, pcfg, pcfg, cors, heads)
xp = sp.ExecParams(params, cparams, hparams)
env = envs.make(envs.export_backend(extra, ''), extra['task'], need=envs.HOST, action_repeat=extra['action_repeat'], episode_length=int(sys.argv[2]))
rt = ev.Runtime(True, float(sys.argv[1]), None, 1)
ev._compile_programs(ex, xp, jax.random.PRNGKey(410), p.tau, rt, None)
ready_at = []
orig = sp.step
def st(ex_, params, state, obs, key, tau, t0, ready, task=None):
  ready_at.append(bool(ready.valid.is_ready() and ready.actions.is_ready()))
  return orig(ex_, params, state, obs, key, tau, t0, ready, task=task)
sp.step = st
for seed in (410, 411):
  ready_at.clear()
  r = ev.run_episode(ex, xp, env, jax.random.PRNGKey(seed), seed, p.tau, rt)
  ms = np.array(r['step_ms']); ok = np.array(ready_at)
  slow = np.argsort(ms)[-8:]
  print('seed', seed, 'p50 %.2f p99 %.2f' % (np.median(ms), np.percentile(ms, 99)), 'not ready at decision:', int((~ok).sum()))
  print('  slowest steps', [(int(i), round(float(ms[i]), 2), bool(ok[i])) for i in slow])
