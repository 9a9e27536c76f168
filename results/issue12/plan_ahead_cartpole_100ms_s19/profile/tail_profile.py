"""Diagnostic (session 19, not a result): which paced decisions of the shipped cartpole agent are slow,
and was the plan they were offered already made? Args: period_ms steps exec_len."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'plan_ahead_cartpole_100ms', 'profile'))
from episode_profile import setup  # noqa: E402  (sets the 3 host devices before jax loads)
import jax, numpy as np  # noqa: E402
from spec_jax import evaluation as ev, speculation as sp  # noqa: E402
ex, xp, env, rt, tau = setup('agents/cartpole-mjx', int(sys.argv[3]), float(sys.argv[1]), int(sys.argv[2]), 410)
ready_at = []
orig = sp.step
def st(ex_, params, state, obs, key, tau, t0, ready, task=None):
  ready_at.append(bool(ready.valid.is_ready() and ready.actions.is_ready()))
  return orig(ex_, params, state, obs, key, tau, t0, ready, task=task)
sp.step = st
for seed in (410, 411):
  ready_at.clear()
  r = ev.run_episode(ex, xp, env, jax.random.PRNGKey(seed), seed, tau, rt)
  ms = np.array(r['step_ms']); ok = np.array(ready_at)
  slow = np.argsort(ms)[-8:]
  print('seed', seed, 'p50 %.2f p99 %.2f' % (np.median(ms), np.percentile(ms, 99)), 'not ready at decision:', int((~ok).sum()))
  print('  slowest steps', [(int(i), round(float(ms[i]), 2), bool(ok[i])) for i in slow])
