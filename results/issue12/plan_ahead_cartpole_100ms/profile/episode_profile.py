"""Diagnostic (session 18): where a paced decision's time goes. Args: period_ms steps. Written
for the code before session 19 (the ready plan copied when offered); on later code ``tput``'s
block would wait for the plan, copied at dispatch. ``setup`` is shared with
results/issue12/plan_ahead_cartpole_100ms_s19/profile/tail_profile.py."""
import os, sys, time
os.environ['XLA_FLAGS'] = os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=3'
import jax, jax.numpy as jnp, numpy as np
from spec_jax import checkpoint, evaluation as ev, speculation as sp, envs


def setup(export, exec_len, period_ms, steps, seed):
  """The MLP / late plan-ahead lead 1 / defer executor of an export at tau = its median
  mismatch, its host env (``steps`` agent steps) and paced runtime, compiled.
  Returns (ex, xp, env, runtime, tau)."""
  model, params, pcfg, cors, meta, heads = checkpoint.load_with_correctors(export, with_acceptance=True)
  extra = meta['extra']
  pts = ev.grid([dict(modes=('mlp',), exec_lens=(exec_len,), taus=(), tau_quantiles=(0.5,), plan_ahead=True, ahead_lead=1, on_reject='defer')], extra['mismatch_quantiles'], baseline=False)
  p = pts[0]
  ex, cparams, hparams = ev.executor_for(p, model, pcfg, pcfg, cors, heads)
  xp = sp.ExecParams(params, cparams, hparams)
  env = envs.make(envs.export_backend(extra, ''), extra['task'], need=envs.HOST, action_repeat=extra['action_repeat'], episode_length=steps)
  rt = ev.Runtime(True, period_ms, None, 1)
  ev._compile_programs(ex, xp, jax.random.PRNGKey(seed), p.tau, rt, None)
  return ex, xp, env, rt, p.tau


def main():
  ex, xp, env, rt, tau = setup('runs/cp_s4_distill/export', 3, float(sys.argv[1]), int(sys.argv[2]), 400)
  T = {'put': [], 'step': [], 'block': []}
  orig_step, orig_put = sp.step, ev._committed
  def tstep(*a, **k):
    t = time.perf_counter(); out = orig_step(*a, **k); T['step'].append(1e3*(time.perf_counter()-t))
    t = time.perf_counter(); jax.block_until_ready(out[0]); T['block'].append(1e3*(time.perf_counter()-t))
    return out
  def tput(x):
    t = time.perf_counter(); y = orig_put(x); jax.block_until_ready(y); T['put'].append(1e3*(time.perf_counter()-t)); return y
  ev.sp.step = tstep; ev._committed = tput
  r = ev.run_episode(ex, xp, env, jax.random.PRNGKey(400), 400, tau, rt)
  ms = np.array(r['step_ms'])
  print('decision ms p50 %.2f p99 %.2f max %.1f' % (np.median(ms), np.percentile(ms, 99), ms.max()))
  for k, v in T.items():
    v = np.array(v); print(k, 'n', len(v), 'p50 %.3f p99 %.3f max %.2f' % (np.median(v), np.percentile(v, 99), v.max()))


if __name__ == '__main__':
  main()
