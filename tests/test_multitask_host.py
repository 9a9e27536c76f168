"""Multitask exports in the host loops: the environment is seen through the model's shapes
(observations zero-padded, actions sliced to the task's) and the task id reaches every plan."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import config
from spec_jax import distill
from spec_jax import evaluation
from spec_jax import planner
from spec_jax import speculation as sp
from spec_jax import world_model
from spec_jax.envs import task_view
import toy

PC = config.PlannerConfig(horizon=3, iterations=2, num_samples=32, num_elites=4, num_pi_trajs=4)


@pytest.fixture(scope='module')
def mt_agent():
  # Two tasks: task 0 has 1 action dimension, task 1 has 2; observations padded to 5.
  wm = world_model.WorldModel(config.model_config(1, 5, 2, latent_dim=32, mlp_dim=64, enc_dim=64,
                                                  num_tasks=2, task_dim=8, action_dims=(1, 2)))
  params = wm.init(jax.random.PRNGKey(0))
  params['reward']['dense_out']['kernel'] = 0.2 * jax.random.normal(
      jax.random.PRNGKey(1), params['reward']['dense_out']['kernel'].shape)
  return wm, params


def test_task_view_pads_observations_and_slices_actions():
  env = toy.FakeEnv(np.arange(12.0).reshape(4, 3), 1)
  view = task_view.TaskView(env, 5, 2)
  assert (view.spec.obs_dim, view.spec.action_dim) == (5, 2)
  np.testing.assert_array_equal(view.reset(), [0, 1, 2, 0, 0])
  obs, reward, _, _ = view.step(np.array([0.5, -0.7]))
  np.testing.assert_array_equal(obs, [3, 4, 5, 0, 0])
  np.testing.assert_array_equal(env.actions[-1], [0.5])      # the task's one action dimension
  assert reward == pytest.approx(-0.25)
  with pytest.raises(ValueError, match='action must be'):
    view.step(np.array([0.5]))
  with pytest.raises(ValueError, match='does not fit'):
    task_view.TaskView(toy.FakeEnv(np.zeros((2, 7)), 1), 5, 2)
  with pytest.raises(ValueError, match='does not fit'):
    task_view.TaskView(toy.FakeEnv(np.zeros((2, 3)), 3), 5, 2)     # 3 action dims > 2


def test_task_id_comes_from_the_config_or_the_export(mt_agent):
  wm, _ = mt_agent
  assert task_view.task_of(wm, {'task_id': 1}) == 1
  assert task_view.task_of(wm, {'task_id': 1}, 0) == 0            # the config wins
  with pytest.raises(ValueError, match='task_id'):
    task_view.task_of(wm, {'task': 'walker-walk', 'task_set': 'mt30'})
  with pytest.raises(ValueError, match='out of range'):
    task_view.task_of(wm, {}, 2)
  single, _ = toy.small_agent()
  env = toy.FakeEnv(np.zeros((2, 5)), 1)
  assert task_view.for_model(single, env, {'task_id': 1}) == (env, None)


def test_multitask_episode_plans_for_its_task(mt_agent):
  wm, params = mt_agent
  ex = sp.Executor(wm, PC, sp.SpecConfig(mode='spec', exec_len=2))
  obs = np.sin(np.arange(12.0)).reshape(4, 3)
  env = toy.FakeEnv(obs, 1)
  view, task = task_view.for_model(wm, env, {'task_id': 0})
  out = evaluation.run_episode(ex, sp.ExecParams(params), view, jax.random.PRNGKey(0), 0, 1e9,
                               evaluation.Runtime(plan_ahead=True), task=task)
  assert len(env.actions) == 4 and all(a.shape == (1,) for a in env.actions)
  assert out['planner_calls'] == 1 and out['adopted'] == 1
  # The first action is the task-0 plan from the padded observation, from the same key.
  _, step_key = jax.random.split(jax.random.PRNGKey(0))
  ref, _ = planner.plan(wm, params, PC, planner.init_state(PC, 2),
                        jnp.asarray(np.concatenate([obs[0], [0, 0]]), jnp.float32), step_key,
                        True, True, task=0)
  np.testing.assert_allclose(env.actions[0], ref.action[:1], atol=1e-5)
  other, _ = planner.plan(wm, params, PC, planner.init_state(PC, 2),
                          jnp.asarray(np.concatenate([obs[0], [0, 0]]), jnp.float32), step_key,
                          True, True, task=1)
  assert not np.allclose(other.action[:1], ref.action[:1], atol=1e-4)


def test_distillation_collects_multitask_rollouts(mt_agent):
  wm, params = mt_agent
  env = toy.FakeEnv(np.sin(np.arange(18.0)).reshape(6, 3), 2)
  view, task = task_view.for_model(wm, env, {'task_id': 1})
  data, stats = distill.collect(wm, params, PC, view, 1, jax.random.PRNGKey(0), history=2,
                                task=task)
  assert stats['tuples'] == 4 and data.a_teacher.shape == (4, 2)    # t0 and t3 replan
  assert all(a.shape == (2,) for a in env.actions)


def test_sweep_of_a_multitask_model_through_the_traced_view(mt_agent):
  from spec_jax import sweep
  wm, params = mt_agent
  fake = toy.FakeJaxEnv(obs_dim=3, action_dim=1, episode_length=6)
  view, task = task_view.for_model(wm, fake, {'task_id': 0}, traced=True)
  assert (view.spec.obs_dim, view.spec.action_dim) == (5, 2) and hash(view) == hash(view)
  state = view.reset_one(jax.random.PRNGKey(0))
  np.testing.assert_array_equal(state.obs[3:], [0, 0])
  stepped, _ = view.step_one(state, jnp.array([0.5, 0.9]))
  # The environment got the task's one action entry: obs' = 0.9 obs + 0.1 * 0.5.
  np.testing.assert_allclose(stepped.obs[:3], 0.9 * state.obs[:3] + 0.05, atol=1e-6)
  ex = sp.Executor(wm, PC, sp.SpecConfig(mode='spec', exec_len=2))
  setup = sweep.SweepSetup(view, ex, task)
  stats = sweep.batched_episodes(setup, sp.ExecParams(params), jnp.array([1e9, 0.0]),
                                 jax.random.split(jax.random.PRNGKey(1), 2))
  np.testing.assert_array_equal(stats.planner_calls, [3, 6])   # exec_len 2 vs replan always
  assert np.all(np.isfinite(np.asarray(stats.ret)))
  with pytest.raises(ValueError, match='multitask'):
    sweep.batched_episodes(sweep.SweepSetup(view, ex), sp.ExecParams(params), jnp.array([1e9]),
                           jax.random.split(jax.random.PRNGKey(1), 1))


def test_corrected_actions_keep_the_task_mask(mt_agent):
  from spec_jax import correctors
  wm, params = mt_agent
  cor = correctors.Corrector(correctors.CorrectorConfig(kind='mlp'), 32, 2)
  cparams = jax.tree_util.tree_map(  # a non-zero output layer: corrections on every dimension
      lambda x: x + 0.3, cor.init(jax.random.PRNGKey(3)))
  ex = sp.Executor(wm, PC, sp.SpecConfig(mode='mlp', exec_len=3), cor)
  xp = sp.ExecParams(params, cparams)
  obs = jnp.sin(jnp.arange(5.0)).at[3:].set(0.0)
  _, state, _ = sp.step(ex, xp, sp.init_state(ex), obs, jax.random.PRNGKey(0), 1e9, True, task=0)
  a, _, info = sp.step(ex, xp, state, obs, jax.random.PRNGKey(1), 1e9, False, task=0)
  assert not bool(info.replanned) and float(a[1]) == 0.0      # task 0 has one action dimension
  b, _, _ = sp.step(ex, xp, state, obs, jax.random.PRNGKey(1), 1e9, False, task=1)
  assert float(b[1]) != 0.0
