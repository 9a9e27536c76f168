import os, time
os.environ['XLA_FLAGS'] = os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=3'
import jax, jax.numpy as jnp, numpy as np
from spec_jax import checkpoint, evaluation as ev, speculation as sp
model, params, pcfg, cors, meta, heads = checkpoint.load_with_correctors('runs/cp_s4_distill/export', with_acceptance=True)
pts = ev.grid([dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.5,), plan_ahead=True, ahead_lead=1, on_reject='defer')], meta['extra']['mismatch_quantiles'], baseline=False)
p = pts[0]
ex, cparams, hparams = ev.executor_for(p, model, pcfg, pcfg, cors, heads)
xp = sp.ExecParams(params, cparams, hparams)
key = jax.random.PRNGKey(0)
rt = ev.Runtime(True, 0.0, None, 1)
ev._compile_programs(ex, xp, key, p.tau, rt, None)
put = ev._committed
state = put(sp.init_state(ex)); empty = put(sp.no_ready(ex)); sparams = put(xp)
obs = jnp.zeros(ex.model.cfg.obs_dim)
a, state, info = sp.step(ex, sparams, state, obs, key, p.tau, True, empty); np.asarray(a)
def timeit(f, n=300):
  ts = []
  for _ in range(n):
    t = time.perf_counter(); f(); ts.append(1e3 * (time.perf_counter() - t))
  return np.median(ts), np.percentile(ts, 99)
obs_np = np.zeros(ex.model.cfg.obs_dim, np.float32)
print('split', timeit(lambda: jax.random.split(key)))
print('int(index)', timeit(lambda: int(state.index)))
def st():
  a, s, i = sp.step(ex, sparams, state, jnp.asarray(obs_np), key, p.tau, False, empty)
  np.asarray(a)
print('step(correct-ish)+asarray', timeit(st))
_, ahead_dev, _ = ev._devices()
ready = sp.rescue_plan(ex, jax.device_put(xp, ahead_dev), *jax.device_put((state, jnp.zeros(ex.model.cfg.latent_dim), jnp.zeros(ex.model.cfg.action_dim), key), ahead_dev))
jax.block_until_ready(ready)
print('put(ready)', timeit(lambda: jax.block_until_ready(put(ready))))
lowered = jax.jit(lambda *a: None)
print('n leaves params', len(jax.tree_util.tree_leaves(sparams)), 'state', len(jax.tree_util.tree_leaves(state)))
print('flatten params', timeit(lambda: jax.tree_util.tree_flatten(sparams)))
# steps while plans run back to back on the plan-ahead device
import threading
stop = False
pp = jax.device_put(xp, ahead_dev)
args = jax.device_put((state, jnp.zeros(ex.model.cfg.latent_dim), jnp.zeros(ex.model.cfg.action_dim), key), ahead_dev)
def planner_loop():
  n = 0
  while not stop:
    jax.block_until_ready(sp.rescue_plan(ex, pp, *args)); n += 1
  print('plans done', n)
th = threading.Thread(target=planner_loop); th.start()
time.sleep(0.5)
print('step under a running plan', timeit(st, 600))
print('plan call alone-ish (while stepping)')
stop = True; th.join()
ts=[]
for _ in range(30):
  t=time.perf_counter(); jax.block_until_ready(sp.rescue_plan(ex, pp, *args)); ts.append(1e3*(time.perf_counter()-t))
print('plan ms median', np.median(ts))
