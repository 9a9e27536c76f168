"""Speculate-verify-correct: the branch rule, equivalences, counters, vmap over envs and tau."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import config
from spec_jax import correctors
from spec_jax import planner
from spec_jax import speculation as sp
from spec_jax import world_model
from spec_jax.envs import dmc
import toy

TOY_PC = config.PlannerConfig(horizon=3, iterations=2, num_samples=32, num_elites=4,
                              num_pi_trajs=4)
PC = config.PlannerConfig(horizon=3, iterations=2, num_samples=32, num_elites=4, num_pi_trajs=4)


def _toy_step(state, obs, tau, t0, cfg, key=0):
  return sp.step(toy.ToyModel(), toy.TOY_PARAMS, TOY_PC, cfg, None, None, state, jnp.asarray(obs),
                 jax.random.PRNGKey(key), tau, t0)


@pytest.mark.parametrize('tau,expect_replan', [(0.4, True), (0.5001, False), (0.6, False)])
def test_replans_exactly_when_mismatch_exceeds_tau(tau, expect_replan):
  # Toy latent = observation and the dynamics are static, so z_hat = obs at plan time and
  # d = ||obs_now - obs_plan|| = 0.5 exactly for the step below.
  cfg = sp.SpecConfig(mode='spec', exec_len=3)
  state = sp.init_state(toy.ToyModel(), TOY_PC, cfg)
  obs0 = jnp.array([0.1, 0.2, 0.3])
  _, state, info = _toy_step(state, obs0, tau, True, cfg)
  assert bool(info.replanned) and int(state.index) == 1
  _, state2, info2 = _toy_step(state, obs0 + jnp.array([0.3, 0.4, 0.0]), tau, False, cfg, key=1)
  np.testing.assert_allclose(info2.d, 0.5, rtol=1e-6)
  assert bool(info2.replanned) == expect_replan
  assert bool(info2.fallback) == expect_replan
  assert int(state2.index) == (1 if expect_replan else 2)


def test_replans_when_queue_exhausted():
  cfg = sp.SpecConfig(mode='spec', exec_len=2)
  state = sp.init_state(toy.ToyModel(), TOY_PC, cfg)
  obs = jnp.array([0.1, 0.2, 0.3])
  flags = []
  for t in range(7):
    a, state, info = _toy_step(state, obs, 10.0, t == 0, cfg, key=t)
    flags.append(bool(info.replanned))
    assert not bool(info.fallback)
  assert flags == [True, False, True, False, True, False, True]
  assert int(state.planner_calls) == 4 and int(state.corrections) == 3


def test_speculative_action_is_the_queued_one():
  cfg = sp.SpecConfig(mode='spec', exec_len=3)
  state = sp.init_state(toy.ToyModel(), TOY_PC, cfg)
  obs = jnp.array([0.1, 0.2, 0.3])
  _, state, _ = _toy_step(state, obs, 10.0, True, cfg)
  queue = state.action_queue
  a1, state, info = _toy_step(state, obs, 10.0, False, cfg, key=1)
  a2, state, _ = _toy_step(state, obs, 10.0, False, cfg, key=2)
  np.testing.assert_array_equal(a1, queue[1])
  np.testing.assert_array_equal(a2, queue[2])
  np.testing.assert_array_equal(info.a_spec, queue[1])
  assert int(info.k) == 1


@pytest.fixture(scope='module')
def agent():
  return toy.small_agent()


def _rollout(agent, mode, tau, steps=12, corrector=None, cparams=None, exec_len=3):
  wm, params = agent
  cfg = sp.SpecConfig(mode=mode, exec_len=exec_len)
  env = dmc.DMCEnv('cartpole-swingup', seed=0, episode_length=steps)
  obs, done, t = env.reset(seed=0), False, 0
  state = sp.init_state(wm, PC, cfg)
  actions = []
  while not done:
    a, state, info = sp.step(wm, params, PC, cfg, corrector, cparams, state, jnp.asarray(obs),
                             jax.random.PRNGKey(100 + t), tau, t == 0)
    actions.append(np.asarray(a))
    obs, _, done, _ = env.step(np.asarray(a))
    t += 1
  return np.stack(actions), state


def test_tau_zero_equals_baseline_planner_call_for_call(agent):
  wm, params = agent
  spec_actions, state = _rollout(agent, 'spec', 0.0)
  assert int(state.planner_calls) == 12 and int(state.corrections) == 0
  # Reference: the planner called directly at every step with the same keys.
  env = dmc.DMCEnv('cartpole-swingup', seed=0, episode_length=12)
  obs, pstate, ref = env.reset(seed=0), planner.init_state(PC, 1), []
  for t in range(12):
    res, pstate = planner.plan(wm, params, PC, pstate, jnp.asarray(obs),
                               jax.random.PRNGKey(100 + t), t == 0, True)
    ref.append(np.asarray(res.action))
    obs = env.step(np.asarray(res.action))[0]
  np.testing.assert_allclose(spec_actions, np.stack(ref), atol=1e-6)
  base_actions, base_state = _rollout(agent, 'baseline', 1e9)
  np.testing.assert_allclose(base_actions, np.stack(ref), atol=1e-6)
  assert int(base_state.planner_calls) == 12


@pytest.mark.parametrize('kind', ['mlp', 'transformer'])
def test_zero_corrector_equals_speculation_without_correction(agent, kind):
  wm, _ = agent
  corr = correctors.Corrector(correctors.CorrectorConfig(kind=kind), 32, 1)
  cparams = corr.init(jax.random.PRNGKey(3))  # zero-initialised output layer
  spec_a, spec_s = _rollout(agent, 'spec', 1e9)
  corr_a, corr_s = _rollout(agent, kind, 1e9, corrector=corr, cparams=cparams)
  np.testing.assert_allclose(spec_a, corr_a, atol=1e-6)
  assert int(corr_s.corrections) == int(spec_s.corrections) == 8  # 4 plans x 2 corrections
  # A non-zero corrector changes the corrected actions (and only those).
  cparams = jax.tree_util.tree_map(lambda x: x + 0.3, cparams)
  moved, _ = _rollout(agent, kind, 1e9, corrector=corr, cparams=cparams)
  assert not np.allclose(moved[1], spec_a[1])
  np.testing.assert_allclose(moved[0], spec_a[0], atol=1e-6)


def test_counters_add_up(agent):
  _, state = _rollout(agent, 'spec', 0.35, steps=20)
  assert int(state.planner_calls) + int(state.corrections) == int(state.steps) == 20
  assert 0 <= int(state.fallbacks) <= int(state.planner_calls)


@pytest.mark.parametrize('batch_step', [sp.step_batch, sp.step_batch_shared],
                         ids=['vmap', 'shared_cond'])
def test_batched_step_over_envs_and_tau_equals_single_steps(agent, batch_step):
  wm, params = agent
  cfg = sp.SpecConfig(mode='spec', exec_len=3)
  B = 3
  obs = jax.random.normal(jax.random.PRNGKey(0), (5, B, 5))
  taus = jnp.array([0.0, 0.2, 1e9])
  keys = jax.random.split(jax.random.PRNGKey(1), 5 * B).reshape(5, B, 2)
  state = sp.batch_state(sp.init_state(wm, PC, cfg), B)
  singles = [sp.init_state(wm, PC, cfg) for _ in range(B)]
  for t in range(5):
    a, state, info = batch_step(wm, params, PC, cfg, None, None, state, obs[t], keys[t], taus,
                                jnp.full((B,), t == 0))
    for i in range(B):
      ai, singles[i], si = sp.step(wm, params, PC, cfg, None, None, singles[i], obs[t, i],
                                   keys[t, i], taus[i], t == 0)
      np.testing.assert_allclose(a[i], ai, atol=1e-5)
      assert bool(info.replanned[i]) == bool(si.replanned)
  np.testing.assert_array_equal(state.planner_calls, [s.planner_calls for s in singles])
  # tau = 0 replans every step; tau = 1e9 only when the queue runs out (t = 0 and 3).
  assert int(state.planner_calls[0]) == 5 and int(state.planner_calls[2]) == 2


def test_jit_of_vmap_over_tau_grid(agent):
  wm, params = agent
  cfg = sp.SpecConfig(mode='spec')
  state0 = sp.init_state(wm, PC, cfg)

  def calls(tau):
    def body(s, t):
      obs = jnp.sin(0.3 * t + jnp.arange(5.0))
      _, s, _ = sp.step(wm, params, PC, cfg, None, None, s, obs, jax.random.PRNGKey(0), tau, t == 0)
      return s, None
    return jax.lax.scan(body, state0, jnp.arange(9))[0].planner_calls

  out = jax.jit(jax.vmap(calls))(jnp.array([0.0, 1e9]))
  np.testing.assert_array_equal(out, [9, 3])


def test_bad_config():
  with pytest.raises(ValueError, match='mode'):
    sp.SpecConfig(mode='fast')
  with pytest.raises(ValueError, match='exec_len'):
    sp.init_state(toy.ToyModel(), TOY_PC, sp.SpecConfig(mode='spec', exec_len=4))
  with pytest.raises(ValueError, match='needs a corrector'):
    cfg = sp.SpecConfig(mode='mlp')
    _toy_step(sp.init_state(toy.ToyModel(), TOY_PC, cfg), jnp.zeros(3), 1.0, True, cfg)
