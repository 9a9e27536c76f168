"""Run by tests/test_sweep.py in a subprocess with 4 forced host devices: the sharded sweep
must equal the same sweep on one device. Prints JSON."""
import dataclasses, os, sys, json
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import jax, jax.numpy as jnp, numpy as np
from spec_jax import config, sweep, speculation as sp
import toy
PC = config.PlannerConfig(num_samples=32, num_elites=4, num_pi_trajs=4, iterations=2)
wm, params = toy.small_agent()
s = sweep.SweepSetup(toy.FakeJaxEnv(), sp.Executor(wm, PC, sp.SpecConfig(mode='spec', exec_len=3)))
params = sp.ExecParams(params)
taus = jnp.array([0.0, 1e9, 1e9])
keys = sweep.grid_keys([0], 2)   # 6 envs on 4 devices: padded to 8
out = sweep.sweep(s, params, taus, keys)
one = sweep.sweep(s, params, taus, keys, devices=jax.local_devices()[:1])
seq = sweep.sweep(dataclasses.replace(s, replanning='sequential'), params, taus, keys)
print(json.dumps(dict(n=len(jax.local_devices()), ret=np.asarray(out.ret).tolist(),
                      ret_seq=np.asarray(seq.ret).tolist(),
                      calls_seq=np.asarray(seq.planner_calls).tolist(),
                      ret1=np.asarray(one.ret).tolist(),
                      calls=np.asarray(out.planner_calls).tolist(),
                      calls1=np.asarray(one.planner_calls).tolist())))
