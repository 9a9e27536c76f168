"""Environment adapters: reset/step, episode length, auto-reset, bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import envs
from spec_jax.envs import dmc
from spec_jax.envs import mjx


def test_dmc_humanoid_walk_spec_and_step():
  env = dmc.DMCEnv('humanoid-walk', seed=0, episode_length=3)
  assert env.spec.obs_dim == 67 and env.spec.action_dim == 21 and env.spec.action_repeat == 2
  obs = env.reset()
  assert obs.shape == (67,) and obs.dtype == np.float32
  for t in range(3):
    obs, reward, done, info = env.step(np.zeros(21))
    assert obs.shape == (67,) and np.isfinite(reward)
    assert done == (t == 2)
  with pytest.raises(RuntimeError, match='reset'):
    env.step(np.zeros(21))


def test_dmc_action_repeat_sums_two_physics_steps():
  e1 = dmc.DMCEnv('cartpole-swingup', seed=3, action_repeat=1)
  e2 = dmc.DMCEnv('cartpole-swingup', seed=3, action_repeat=2)
  e1.reset(), e2.reset()
  a = np.array([0.3])
  r1 = e1.step(a)[1] + e1.step(a)[1]
  obs1 = e1.step(a)[0]  # noqa: F841 - advance a third physics step on e1 only
  _, r2, _, _ = e2.step(a)
  assert r2 == pytest.approx(r1, rel=1e-6)


def test_dmc_bad_input():
  with pytest.raises(ValueError, match='Unknown dm_control task'):
    dmc.DMCEnv('humanoid-fly')
  with pytest.raises(ValueError, match="domain-task"):
    dmc.DMCEnv('humanoid')
  env = dmc.DMCEnv('cartpole-swingup')
  env.reset()
  with pytest.raises(ValueError, match=r'outside \[-1, 1\]'):
    env.step(np.array([1.5]))
  with pytest.raises(ValueError, match='shape'):
    env.step(np.zeros(3))
  with pytest.raises(ValueError, match='NaN'):
    env.step(np.array([np.nan]))


def test_playground_name():
  assert mjx.playground_name('humanoid-walk') == 'HumanoidWalk'
  assert mjx.playground_name('cartpole-swingup') == 'CartpoleSwingup'
  assert mjx.playground_name('HumanoidWalk') == 'HumanoidWalk'


@pytest.fixture(scope='module')
def mjx_env():
  return mjx.MJXEnv('cartpole-swingup', impl='jax', episode_length=2)


@pytest.mark.slow
def test_mjx_batched_reset_step_autoreset(mjx_env):
  dm = dmc.DMCEnv('cartpole-swingup')
  assert (mjx_env.spec.obs_dim, mjx_env.spec.action_dim) == (dm.spec.obs_dim, dm.spec.action_dim)
  state = mjx_env.reset(jax.random.PRNGKey(0), 3)
  assert state.obs.shape == (3, mjx_env.spec.obs_dim)
  out = mjx_env.step(state, jnp.zeros((3, 1)))
  assert out.reward.shape == (3,) and not bool(out.done.any())
  np.testing.assert_array_equal(out.state.t, 1)
  out2 = mjx_env.step(out.state, 0.5 * jnp.ones((3, 1)))
  assert bool(out2.done.all())
  np.testing.assert_array_equal(out2.state.t, 0)
  np.testing.assert_allclose(out2.final_return, out.reward + out2.reward, rtol=1e-6)
  np.testing.assert_array_equal(out2.state.episode_return, 0.0)
  # After auto-reset the observation is a reset observation, not the final one.
  reset_keys = jax.vmap(jax.random.split)(out.state.key)[:, 0]
  expected = jax.vmap(mjx_env.playground_env.reset)(reset_keys).obs
  np.testing.assert_allclose(out2.obs, expected, atol=1e-6)
  assert not np.allclose(out2.final_obs, out2.obs)


@pytest.mark.slow
def test_mjx_step_under_outer_jit(mjx_env):
  state = mjx_env.reset(jax.random.PRNGKey(1), 2)
  out = jax.jit(mjx_env.step)(state, jnp.ones((2, 1)))
  assert out.obs.shape == (2, mjx_env.spec.obs_dim)


def test_mjx_bad_input(mjx_env):
  state = mjx_env.reset(jax.random.PRNGKey(0), 2)
  with pytest.raises(ValueError, match=r'outside \[-1, 1\]'):
    mjx_env.step(state, 2 * jnp.ones((2, 1)))
  with pytest.raises(AssertionError):
    mjx_env.step(state, jnp.ones((3, 1)))
  with pytest.raises(ValueError, match='Unknown Playground task'):
    mjx.MJXEnv('humanoid-fly')
  with pytest.raises(ValueError, match='impl'):
    mjx.MJXEnv('cartpole-swingup', impl='cuda')
  with pytest.raises(ValueError, match='friction and mass'):
    mjx.MJXEnv('cartpole-swingup', model_scale={'gravity': 2.0})


def test_mjx_model_scale_scales_model_fields():
  base = mjx.MJXEnv('cartpole-swingup', episode_length=5).playground_env.mjx_model
  heavy = mjx.MJXEnv('cartpole-swingup', episode_length=5,
                     model_scale={'mass': 3.0, 'friction': 0.5}).playground_env.mjx_model
  np.testing.assert_allclose(heavy.body_mass, 3.0 * np.asarray(base.body_mass), rtol=1e-6)
  np.testing.assert_allclose(heavy.body_inertia, 3.0 * np.asarray(base.body_inertia), rtol=1e-6)
  np.testing.assert_allclose(heavy.geom_friction, 0.5 * np.asarray(base.geom_friction), rtol=1e-6)
  # (tests/test_sweep.py::test_perturbation_changes_outcome, marked slow, checks the dynamics.)


def test_check_action():
  np.testing.assert_array_equal(envs.check_action([0.5, -1.0], 2), [0.5, -1.0])
  with pytest.raises(ValueError):
    envs.check_action([[0.5, -1.0]], 2)
