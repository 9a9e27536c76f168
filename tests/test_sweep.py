"""Vectorised tau x seed x episode sweep equals the point-by-point loop; perturbations."""
import dataclasses

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
  # The sweep logic needs no simulator: an in-JAX fake environment (MJX is covered by the
  # slow perturbation test and by test_envs).
  wm, params = toy.small_agent()
  ex = sp.Executor(wm, PC, sp.SpecConfig(mode='spec', exec_len=3))
  return sweep.SweepSetup(toy.FakeJaxEnv(), ex), sp.ExecParams(params)


def test_vectorised_sweep_equals_loop(setup):
  s, params = setup
  taus = jnp.array([0.0, 1e9])
  keys = sweep.grid_keys([0, 1], 1)
  vec = sweep.sweep(s, params, taus, keys)
  loop = sweep.sweep_loop(s, params, taus, keys)
  assert vec.ret.shape == (2, 2, 1)
  for a, b in zip(vec, loop):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(vec.planner_calls[0], 12)   # tau = 0: replan every step
  np.testing.assert_array_equal(vec.planner_calls[1], 4)    # never fall back: every 3rd step
  np.testing.assert_array_equal(vec.planner_calls + vec.corrections, 12)
  # Compaction: all 4 envs replan together at t = 0, 3, 6, 9 (capacity 4); in between only
  # the two tau = 0 envs (capacity 2): 4 * 4 + 8 * 2 = 32 evaluations for 32 replans.
  np.testing.assert_allclose(float(jnp.sum(vec.plan_evals)), 32.0)
  rows = sweep.summarize(vec, taus, 3, 'spec')
  assert [r['planner_calls'] for r in rows] == [12.0, 4.0]
  assert rows[0]['return_median'] == pytest.approx(float(np.median(vec.ret[0])))


def test_sequential_replanning_sweep_equals_loop(setup):
  # One tau = 0 env (replans every step) and three that replan every 3rd step: the while_loop
  # plans 4 envs at t = 0, 3, 6, 9 and one in between: 4 * 4 + 8 * 1 = 24 plans, all needed.
  s, params = setup
  seq = dataclasses.replace(s, replanning='sequential')
  vec = sweep.sweep(seq, params, jnp.array([0.0, 1e9, 1e9, 1e9]), sweep.grid_keys([0], 1))
  loop = sweep.sweep_loop(s, params, jnp.array([0.0, 1e9, 1e9, 1e9]), sweep.grid_keys([0], 1))
  for a, b in zip(vec, loop):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(vec.planner_calls.reshape(-1), [12, 4, 4, 4])
  np.testing.assert_allclose(float(jnp.sum(vec.plan_evals)), 24.0)
  # The dispatch: a while_loop over the replanning envs, not compaction's lax.switch (cond).
  jaxpr = lambda setup_: str(jax.make_jaxpr(lambda t, k: sweep.batched_episodes(
      setup_, params, t, k))(jnp.zeros(2), jax.random.split(jax.random.PRNGKey(0), 2)))
  assert 'while[' in jaxpr(seq) and 'cond[' not in jaxpr(seq)
  assert 'while[' not in jaxpr(s)
  with pytest.raises(ValueError, match='replanning'):
    dataclasses.replace(s, replanning='batched')


def test_plan_evals_and_replanning_choice():
  # B = 10: capacities (1, 2, 4, 6, 8, 10); 3 replanning envs -> capacity 4, shared 4/3 each
  # (compact); exactly 1 each (sequential); 0 for the others, 0 when none replans.
  replanned = jnp.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0], bool)
  np.testing.assert_allclose(sweep.plan_evals('compact', replanned),
                             np.where(replanned, 4 / 3, 0.0), rtol=1e-6)
  np.testing.assert_array_equal(sweep.plan_evals('sequential', replanned), replanned * 1.0)
  np.testing.assert_array_equal(sweep.plan_evals('compact', jnp.zeros(10, bool)), 0.0)
  assert sweep.resolve_replanning('auto') == 'sequential'    # the test session runs on CPU
  assert sweep.resolve_replanning('compact') == 'compact'
  with pytest.raises(ValueError, match='replanning'):
    sweep.resolve_replanning('batched')


@pytest.mark.slow
def test_plain_vmap_sweep_equals_loop(setup):
  s, params = setup
  taus, keys = jnp.array([0.0, 0.3, 1e9]), sweep.grid_keys([0, 1], 2)
  naive = sweep.sweep_vmap(s, params, taus, keys)
  loop = sweep.sweep_loop(s, params, taus, keys)
  for a, b in zip(naive, loop):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_pareto_front():
  rows = [dict(planner_calls=10, return_mean=5.0), dict(planner_calls=5, return_mean=6.0),
          dict(planner_calls=3, return_mean=1.0), dict(planner_calls=8, return_mean=7.0)]
  front = sweep.pareto_front(rows)
  assert [(r['planner_calls'], r['return_mean']) for r in front] == [(3, 1.0), (5, 6.0), (8, 7.0)]


def test_terminated_envs_stop_counting(setup):
  # Physics explodes at step 5 in every env: the episode ends, and nothing after it counts
  # (planner calls at t = 0 and 3 only; 5 steps; no safe-action steps while alive).
  s, params = setup
  s2 = sweep.SweepSetup(toy.FakeJaxEnv(nan_at=5), s.ex)
  stats = sweep.sweep(s2, params, jnp.array([1e9]), sweep.grid_keys([0], 2))
  np.testing.assert_array_equal(stats.steps, 4)        # alive for steps 0..3; step 4 ends it
  np.testing.assert_array_equal(stats.planner_calls, 2)
  np.testing.assert_array_equal(stats.planner_calls + stats.corrections, 5)
  np.testing.assert_array_equal(stats.nonfinite, 0)
  assert np.all(np.isfinite(np.asarray(stats.ret)))


@pytest.mark.slow
def test_perturbation_changes_outcome():
  wm, params = toy.small_agent()
  s = sweep.SweepSetup(mjx.MJXEnv('cartpole-swingup', episode_length=12),
                       sp.Executor(wm, PC, sp.SpecConfig(mode='spec', exec_len=3)))
  params = sp.ExecParams(params)
  heavy = mjx.MJXEnv('cartpole-swingup', episode_length=12, model_scale={'mass': 3.0,
                                                                        'friction': 0.5})
  s2 = sweep.SweepSetup(heavy, s.ex)
  taus, keys = jnp.array([1e9]), sweep.grid_keys([0], 1)
  a = sweep.sweep(s, params, taus, keys)
  b = sweep.sweep(s2, params, taus, keys)
  assert not np.allclose(a.ret, b.ret)


@pytest.mark.slow
def test_sweep_sharded_over_four_cpu_devices_equals_one_device():
  res = toy.run_device_script('sharded_sweep.py', 4)
  assert res['n'] == 4                                    # really sharded over 4 devices
  np.testing.assert_allclose(res['ret'], res['ret1'], rtol=1e-5, atol=1e-5)
  assert res['calls'] == res['calls1']
  np.testing.assert_allclose(res['ret_seq'], res['ret1'], rtol=1e-5, atol=1e-5)  # sequential
  assert res['calls_seq'] == res['calls1']
  assert np.asarray(res['calls']).shape == (3, 1, 2)


def test_host_share_and_perturbation_parsing():
  assert sweep.host_share((0, 1, 2, 3, 4), 0, 2) == [0, 2, 4]
  assert sweep.host_share((0, 1, 2, 3, 4), 1, 2) == [1, 3]
  with pytest.raises(ValueError, match='cannot be shared'):
    sweep.host_share((0,), 1, 2)
  assert sweep.parse_perturbation('none') is None
  assert sweep.parse_perturbation('friction=0.7+mass=1.3') == {'friction': 0.7, 'mass': 1.3}
  with pytest.raises(ValueError, match='perturbation'):
    sweep.parse_perturbation('heavy')


@pytest.mark.slow
def test_sweep_job_end_to_end(tmp_path):
  import ml_collections
  from spec_jax import checkpoint
  wm, params = toy.small_agent()
  export = checkpoint.export_agent(str(tmp_path / 'agent'), wm.cfg, params, PC,
                                   extra=dict(task='cartpole-swingup', action_repeat=2,
                                              episode_length=8,
                                              mismatch_quantiles=list(np.linspace(0, 2, 101))))
  cfg = ml_collections.ConfigDict(dict(
      task='', backend='mjx', impl='jax', mode='spec', taus=(0.5,), tau_quantiles=(0.9,),
      horizons=(3,),
      seeds=(0,), episodes=2, episode_length=0, perturbations=('none', 'mass=2.0'),
      coordinator='', num_processes=1, process_id=0))
  paths = sweep.run(cfg, export, str(tmp_path / 'sw'))
  text = open(paths['md']).read()
  assert 'tau_q' in text and 'mass=2.0' in text and '1.8' in text   # q0.9 of U(0, 2)
