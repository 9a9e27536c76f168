"""The probe behind 'bfloat16 products run in about half the float32 time on this CPU': two
chained 512 x 512 x 512 products (tanh between), float32 vs bfloat16 operands with float32
accumulation, median ms of 50 interleaved calls.
  python results/issue11/bf16_planner/matmul_probe.py"""
import time

import jax
import jax.numpy as jnp
import numpy as np

x = jax.random.normal(jax.random.PRNGKey(0), (512, 512))
w = jax.random.normal(jax.random.PRNGKey(1), (512, 512))
dot16 = lambda a, b: jnp.dot(a.astype(jnp.bfloat16), b.astype(jnp.bfloat16),
                             preferred_element_type=jnp.float32)
fns = dict(float32=jax.jit(lambda x, w: jnp.tanh(x @ w) @ w),
           bfloat16=jax.jit(lambda x, w: dot16(jnp.tanh(dot16(x, w)), w)))
for f in fns.values():
  f(x, w).block_until_ready()
times = {n: [] for n in fns}
for _ in range(50):
  for n, f in fns.items():
    t = time.perf_counter()
    f(x, w).block_until_ready()
    times[n].append(1e3 * (time.perf_counter() - t))
for n, ts in times.items():
  print(f'{n}: {np.median(ts):.2f} ms')
