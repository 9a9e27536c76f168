"""Vectorised tau x seed x episode sweep equals the point-by-point loop; perturbations."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import config
from spec_jax import sweep
from spec_jax import speculation as sp
from spec_jax import world_model
from spec_jax.envs import mjx
import toy

PC = config.PlannerConfig(num_samples=32, num_elites=4, num_pi_trajs=4, iterations=2)


@pytest.fixture(scope='module')
def setup():
  env = mjx.MJXEnv('cartpole-swingup', episode_length=12)
  wm, params = toy.small_agent()
  return sweep.SweepSetup(env, wm, PC, sp.SpecConfig(mode='spec', exec_len=3)), params


def test_vectorised_sweep_equals_loop(setup):
  s, params = setup
  taus = jnp.array([0.0, 0.3, 1e9])
  keys = sweep.grid_keys([0, 1], 2)
  vec = sweep.sweep(s, params, None, taus, keys)
  loop = sweep.sweep_loop(s, params, None, taus, keys)
  naive = sweep.sweep_vmap(s, params, None, taus, keys)
  assert vec.ret.shape == (3, 2, 2)
  for a, b, c in zip(vec, loop, naive):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c, b, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(vec.planner_calls[0], 12)   # tau = 0: replan every step
  np.testing.assert_array_equal(vec.planner_calls[2], 4)    # never fall back: every 3rd step
  np.testing.assert_array_equal(vec.planner_calls + vec.corrections, 12)
  rows = sweep.summarize(vec, taus, 3, 'spec')
  assert [r['planner_calls'] for r in rows] == [12.0, float(np.mean(vec.planner_calls[1])), 4.0]


def test_pareto_front():
  rows = [dict(planner_calls=10, return_mean=5.0), dict(planner_calls=5, return_mean=6.0),
          dict(planner_calls=3, return_mean=1.0), dict(planner_calls=8, return_mean=7.0)]
  front = sweep.pareto_front(rows)
  assert [(r['planner_calls'], r['return_mean']) for r in front] == [(3, 1.0), (5, 6.0), (8, 7.0)]


@pytest.mark.slow
def test_perturbation_changes_outcome(setup):
  s, params = setup
  heavy = mjx.MJXEnv('cartpole-swingup', episode_length=12, model_scale={'mass': 3.0,
                                                                        'friction': 0.5})
  s2 = sweep.SweepSetup(heavy, s.model, s.planner_cfg, s.spec_cfg)
  taus, keys = jnp.array([1e9]), sweep.grid_keys([0], 1)
  a = sweep.sweep(s, params, None, taus, keys)
  b = sweep.sweep(s2, params, None, taus, keys)
  assert not np.allclose(a.ret, b.ret)
