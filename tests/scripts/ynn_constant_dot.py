"""Reproducer of the XLA CPU bug behind the vmap test's rare NaN (BUILD_NOTES, session 9).

jaxlib 0.10.2 on CPU fuses dot products into YNNPACK ("__ynn_fusion" in the optimised HLO). When
the parameters are initialised inside the same jit (or closed over by it), the
zero-initialised reward output kernel is a compile-time constant, and the fused reward loss
reads garbage (values like 1e30, inf, nan; different in every process). Run it with and without the workaround flag:

  python tests/scripts/ynn_constant_dot.py
  XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= python tests/scripts/ynn_constant_dot.py

Prints the eager and the jitted reward loss; exit status 1 when they differ.
"""
import sys

import jax
import jax.numpy as jnp

from spec_jax import config
from spec_jax import numerics
from spec_jax import world_model


def reward_loss(model, key, obs, action, reward):
  params = model.init(key)
  z = model.encode(params, obs)
  logits = model.reward_logits(params, z, action)
  return jnp.mean(numerics.soft_ce(logits, reward, model.cfg.num_bins, model.cfg.vmin,
                                   model.cfg.vmax))


def main():
  model = world_model.WorldModel(config.model_config(1, 5, 2, latent_dim=32, mlp_dim=64,
                                                     enc_dim=64))
  k_obs, k_act, k_rew = jax.random.split(jax.random.PRNGKey(1), 3)
  args = (jax.random.normal(k_obs, (3, 16, 5)),
          jax.random.uniform(k_act, (3, 16, 2), minval=-1, maxval=1),
          jax.random.uniform(k_rew, (3, 16)))
  init_key = jax.random.PRNGKey(0)
  eager = float(reward_loss(model, init_key, *args))
  jitted = float(jax.jit(reward_loss, static_argnums=0)(model, init_key, *args))
  print(f'eager {eager!r}  jit {jitted!r}')
  return 0 if abs(eager - jitted) < 1e-5 * max(1.0, abs(eager)) else 1


if __name__ == '__main__':
  sys.exit(main())
