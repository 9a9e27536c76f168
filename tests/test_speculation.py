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
  return sp.step(sp.Executor(toy.ToyModel(), TOY_PC, cfg), sp.ExecParams(toy.TOY_PARAMS), state,
                 jnp.asarray(obs), jax.random.PRNGKey(key), tau, t0)


def _z_hat(obs_plan, queue, i, drift=0.5):
  """Hand-computed predicted latent after i queued actions for the toy model (z' = z + 0.5 a)."""
  return np.asarray(obs_plan) + drift * np.asarray(queue)[:i].sum(axis=0)


@pytest.mark.parametrize('tau,expect_replan', [(0.4, True), (0.5001, False), (0.6, False)])
def test_replans_exactly_when_mismatch_exceeds_tau(tau, expect_replan):
  # Toy latent = observation, dynamics z' = z + 0.5 a: after the plan at obs0 the predicted
  # latent for the next step is obs0 + 0.5 a_0. We observe it displaced by [0.3, 0.4, 0]:
  # d = 0.5 exactly.
  cfg = sp.SpecConfig(mode='spec', exec_len=3)
  state = sp.init_state(sp.Executor(toy.ToyModel(), TOY_PC, cfg))
  obs0 = np.array([0.1, 0.2, 0.3])
  _, state, info = _toy_step(state, obs0, tau, True, cfg)
  assert bool(info.replanned) and int(state.index) == 1
  obs1 = _z_hat(obs0, state.action_queue, 1) + np.array([0.3, 0.4, 0.0])
  _, state2, info2 = _toy_step(state, obs1, tau, False, cfg, key=1)
  np.testing.assert_allclose(info2.d, 0.5, rtol=1e-5)
  assert bool(info2.replanned) == expect_replan
  assert bool(info2.fallback) == expect_replan
  assert int(state2.index) == (1 if expect_replan else 2)


def test_mismatch_trace_against_hand_computed_latents():
  # exec_len 3, no fallback (tau huge): z_hat_k = obs0 + 0.5 (a_0 + ... + a_{k-1}); observe
  # z_hat_k + delta_k and expect d_k = |delta_k| and z_hat_k exactly.
  cfg = sp.SpecConfig(mode='spec', exec_len=3)
  state = sp.init_state(sp.Executor(toy.ToyModel(), TOY_PC, cfg))
  obs0 = np.array([0.1, -0.2, 0.3])
  _, state, _ = _toy_step(state, obs0, 1e9, True, cfg)
  queue = np.asarray(state.action_queue)
  assert np.abs(queue).sum() > 0.1   # non-trivial actions: a wrong index would move z_hat
  for k, delta in [(1, [0.0, 0.6, 0.8]), (2, [0.2, 0.0, 0.0])]:
    obs = _z_hat(obs0, queue, k) + np.array(delta)
    _, state, info = _toy_step(state, obs, 1e9, False, cfg, key=k)
    np.testing.assert_allclose(info.z_hat, _z_hat(obs0, queue, k), atol=1e-6)
    np.testing.assert_allclose(info.d, np.linalg.norm(delta), rtol=1e-5)
    assert int(info.k) == k and not bool(info.replanned)


def test_forced_fallback_trace_counts_by_hand():
  # tau 0.5, exec_len 3. Displacements from the hand-computed z_hat per step, and the
  # expected decision: t0 plan | 0.3 correct | 0.7 fallback | 0 correct | 0 correct |
  # queue exhausted -> replan (not a fallback) | 0.6 fallback.
  cfg = sp.SpecConfig(mode='spec', exec_len=3)
  state = sp.init_state(sp.Executor(toy.ToyModel(), TOY_PC, cfg))
  disp = [None, 0.3, 0.7, 0.0, 0.0, 0.0, 0.6]
  want_replan = [True, False, True, False, False, True, True]
  want_fallback = [False, False, True, False, False, False, True]
  plan_obs = queue = None
  k = 0
  for t, (dd, rp, fb) in enumerate(zip(disp, want_replan, want_fallback)):
    if t == 0:
      obs = np.array([0.2, 0.1, -0.1])
    else:
      obs = _z_hat(plan_obs, queue, k) + np.array([0.0, 0.0, dd])
    _, state, info = _toy_step(state, obs, 0.5, t == 0, cfg, key=t)
    assert (bool(info.replanned), bool(info.fallback)) == (rp, fb), t
    if rp:
      plan_obs, queue, k = obs, np.asarray(state.action_queue), 1
    else:
      k += 1
  assert (int(state.planner_calls), int(state.corrections), int(state.fallbacks)) == (4, 3, 2)
  assert int(state.steps) == 7


def test_replans_when_queue_exhausted():
  cfg = sp.SpecConfig(mode='spec', exec_len=2)
  state = sp.init_state(sp.Executor(toy.ToyModel(), TOY_PC, cfg))
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
  state = sp.init_state(sp.Executor(toy.ToyModel(), TOY_PC, cfg))
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
  ex = sp.Executor(wm, PC, cfg, corrector)
  state = sp.init_state(ex)
  actions = []
  while not done:
    a, state, info = sp.step(ex, sp.ExecParams(params, cparams), state, jnp.asarray(obs),
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
  # Two different compiled programs: equal up to float32 rounding amplified by MPPI (1e-5).
  np.testing.assert_allclose(spec_a, corr_a, atol=1e-5)
  assert int(corr_s.corrections) == int(spec_s.corrections) == 8  # 4 plans x 2 corrections
  # A non-zero corrector changes the corrected actions (and only those).
  cparams = jax.tree_util.tree_map(lambda x: x + 0.3, cparams)
  moved, _ = _rollout(agent, kind, 1e9, corrector=corr, cparams=cparams)
  assert not np.allclose(moved[1], spec_a[1])
  np.testing.assert_allclose(moved[0], spec_a[0], atol=1e-6)


@pytest.mark.parametrize('k', [1, 2])
def test_replan_warm_start_is_shifted_by_executed_steps(agent, k):
  # Plan at t0 (executes queue[0]), then k corrected steps (queue[1..k]), then a fallback
  # replans at t = k + 1: k + 1 actions of the old plan were executed, so MPPI must start from
  # the old mean advanced by k + 1 (the old code always advanced by one).
  wm, params = agent
  pc = config.PlannerConfig(horizon=4, iterations=2, num_samples=32, num_elites=4,
                            num_pi_trajs=4)
  cfg = sp.SpecConfig(mode='spec', exec_len=4)
  ex, xp = sp.Executor(wm, pc, cfg), sp.ExecParams(params)
  state = sp.init_state(ex)
  obs = [jnp.sin(jnp.arange(5.0) + t) for t in range(k + 2)]
  _, state, _ = sp.step(ex, xp, state, obs[0], jax.random.PRNGKey(0), 1e9, True)
  for t in range(1, k + 1):
    _, state, info = sp.step(ex, xp, state, obs[t], jax.random.PRNGKey(t), 1e9, False)
    assert not bool(info.replanned)
  before = state
  key = jax.random.PRNGKey(99)
  a, state, info = sp.step(ex, xp, before, obs[k + 1], key, 0.0, False)
  assert bool(info.fallback)
  # The initial mean the replan must use, by hand: old mean rows k+1.. then zeros.
  old = np.asarray(before.planner.prev_mean)
  expected_init = np.concatenate([old[k + 1:], np.zeros((k + 1, 1))])
  np.testing.assert_allclose(planner.warm_start(before.planner.prev_mean, k + 1, False),
                             expected_init)
  ref, _ = planner.plan(wm, params, pc, planner.PlannerState(prev_mean=jnp.concatenate(
      [jnp.zeros((1, 1)), jnp.asarray(expected_init[:-1])])), obs[k + 1], key, False, True)
  np.testing.assert_allclose(a, ref.action, atol=1e-6)
  np.testing.assert_allclose(state.planner.prev_mean, ref.mean, atol=1e-6)
  wrong, _ = planner.plan(wm, params, pc, before.planner, obs[k + 1], key, False, True)
  assert not np.allclose(wrong.mean, ref.mean, atol=1e-4)   # one-step shift: another plan


def test_warm_start_hand_values():
  m = jnp.arange(12.0).reshape(4, 3)
  np.testing.assert_array_equal(planner.warm_start(m, 1, False), [[3, 4, 5], [6, 7, 8],
                                                                  [9, 10, 11], [0, 0, 0]])
  np.testing.assert_array_equal(planner.warm_start(m, 3, False), [[9, 10, 11]] + [[0] * 3] * 3)
  np.testing.assert_array_equal(planner.warm_start(m, 4, False), np.zeros((4, 3)))
  np.testing.assert_array_equal(planner.warm_start(m, 7, False), np.zeros((4, 3)))
  np.testing.assert_array_equal(planner.warm_start(m, 2, True), np.zeros((4, 3)))


@pytest.mark.parametrize('jit,bad', [(True, np.nan), (True, np.inf),
                                     pytest.param(False, np.nan, marks=pytest.mark.slow)],
                         ids=['jit-nan', 'jit-inf', 'nojit-nan'])
def test_nonfinite_observation_never_reaches_the_actuators(agent, jit, bad):
  wm, params = agent
  cfg = sp.SpecConfig(mode='spec', exec_len=3)
  fn = sp.step if jit else sp.step.__wrapped__
  ex, xp = sp.Executor(wm, PC, cfg), sp.ExecParams(params)
  state = sp.init_state(ex)
  good = jnp.sin(jnp.arange(5.0))
  _, state, _ = fn(ex, xp, state, good, jax.random.PRNGKey(0), 1e9, True)
  before = state
  a, state, info = fn(ex, xp, state, good.at[2].set(bad), jax.random.PRNGKey(1), 1e9, False)
  np.testing.assert_array_equal(a, np.full(1, sp.SAFE_ACTION))
  assert bool(info.nonfinite) and int(state.nonfinite) == 1 and not bool(info.replanned)
  for name in ('action_queue', 'latent_queue', 'history'):
    np.testing.assert_array_equal(getattr(state, name), getattr(before, name))
  np.testing.assert_array_equal(state.planner.prev_mean, before.planner.prev_mean)
  # The next finite observation replans (the queue was abandoned) and acts normally.
  a2, state, info2 = fn(ex, xp, state, good, jax.random.PRNGKey(2), 1e9, False)
  assert bool(info2.replanned) and not bool(info2.nonfinite) and np.all(np.isfinite(a2))
  assert int(state.planner_calls) == 2 and int(state.nonfinite) == 1


def test_nonfinite_planner_output_gives_safe_action(agent):
  wm, params = agent
  broken = jax.tree_util.tree_map(lambda x: x, params)
  broken['pi']['dense_out']['kernel'] = jnp.full_like(broken['pi']['dense_out']['kernel'], jnp.nan)
  broken['reward']['dense_out']['kernel'] = jnp.full_like(
      broken['reward']['dense_out']['kernel'], jnp.nan)
  cfg = sp.SpecConfig(mode='baseline')
  ex = sp.Executor(wm, PC, cfg)
  a, state, info = sp.step(ex, sp.ExecParams(broken), sp.init_state(ex), jnp.ones(5),
                           jax.random.PRNGKey(0), 1e9, True)
  assert np.all(np.isfinite(a)) and bool(info.nonfinite) and int(state.nonfinite) == 1


@pytest.mark.parametrize('batch_step', [sp.step_batch, sp.step_batch_shared],
                         ids=['vmap', 'shared_cond'])  # compact: forced-pattern test below
def test_batched_step_over_envs_and_tau_equals_single_steps(agent, batch_step):
  wm, params = agent
  cfg = sp.SpecConfig(mode='spec', exec_len=3)
  B = 3
  obs = jax.random.normal(jax.random.PRNGKey(0), (5, B, 5))
  taus = jnp.array([0.0, 0.2, 1e9])
  keys = jax.random.split(jax.random.PRNGKey(1), 5 * B).reshape(5, B, 2)
  ex, xp = sp.Executor(wm, PC, cfg), sp.ExecParams(params)
  state = sp.batch_state(sp.init_state(ex), B)
  singles = [sp.init_state(ex) for _ in range(B)]
  for t in range(5):
    a, state, info = batch_step(ex, xp, state, obs[t], keys[t], taus, jnp.full((B,), t == 0))
    for i in range(B):
      ai, singles[i], si = sp.step(ex, xp, singles[i], obs[t, i], keys[t, i], taus[i], t == 0)
      np.testing.assert_allclose(a[i], ai, atol=1e-5)
      assert bool(info.replanned[i]) == bool(si.replanned)
  np.testing.assert_array_equal(state.planner_calls, [s.planner_calls for s in singles])
  # tau = 0 replans every step; tau = 1e9 only when the queue runs out (t = 0 and 3).
  assert int(state.planner_calls[0]) == 5 and int(state.planner_calls[2]) == 2


def test_jit_of_vmap_over_tau_grid(agent):
  wm, params = agent
  cfg = sp.SpecConfig(mode='spec')
  ex = sp.Executor(wm, PC, cfg)
  state0 = sp.init_state(ex)

  def calls(tau):
    def body(s, t):
      obs = jnp.sin(0.3 * t + jnp.arange(5.0))
      _, s, _ = sp.step(ex, sp.ExecParams(params), s, obs, jax.random.PRNGKey(0), tau, t == 0)
      return s, None
    return jax.lax.scan(body, state0, jnp.arange(9))[0].planner_calls

  out = jax.jit(jax.vmap(calls))(jnp.array([0.0, 1e9]))
  np.testing.assert_array_equal(out, [9, 3])


def test_bad_config():
  with pytest.raises(ValueError, match='mode'):
    sp.SpecConfig(mode='fast')
  with pytest.raises(ValueError, match='exec_len'):
    sp.init_state(sp.Executor(toy.ToyModel(), TOY_PC, sp.SpecConfig(mode='spec', exec_len=4)))
  with pytest.raises(ValueError, match='needs a corrector'):
    sp.Executor(toy.ToyModel(), TOY_PC, sp.SpecConfig(mode='mlp'))
  with pytest.raises(ValueError, match='gate'):
    sp.SpecConfig(mode='spec', gate='cosine')
  with pytest.raises(ValueError, match='acceptance head'):
    sp.Executor(toy.ToyModel(), TOY_PC, sp.SpecConfig(mode='spec', gate='learned'))
  mlp = correctors.Corrector(correctors.CorrectorConfig(kind='mlp'), 3, 3)
  with pytest.raises(ValueError, match="'transformer' corrector|'mlp' corrector"):
    sp.Executor(toy.ToyModel(), TOY_PC, sp.SpecConfig(mode='transformer'), mlp)
  with pytest.raises(ValueError, match='obs'):
    cfg = sp.SpecConfig(mode='spec')
    _toy_step(sp.init_state(sp.Executor(toy.ToyModel(), TOY_PC, cfg)), jnp.zeros(4), 1.0, True, cfg)


_SLOW = pytest.mark.slow


@pytest.mark.parametrize('runner,pattern', [
    ('compact', 'none'), ('compact', 'all'), pytest.param('compact', 'one', marks=_SLOW),
    pytest.param('compact', 'random', marks=_SLOW), ('sequential', 'random'),
    pytest.param('sequential', 'all', marks=_SLOW),
    pytest.param('sequential', 'none', marks=_SLOW)])
def test_batched_steps_equal_single_steps_for_forced_replan_patterns(agent, runner, pattern):
  # B = 4 (capacities 1, 2, 3, 4). After the common t0 plan, tau per env forces who replans:
  # tau = 0 replans (d > 0), tau = 1e9 corrects while the queue lasts (exec_len 6 > steps).
  # runner 'sequential': the replanning environments planned one at a time (while_loop).
  wm, params = agent
  pc = config.PlannerConfig(horizon=6, iterations=2, num_samples=32, num_elites=4,
                            num_pi_trajs=4)
  cfg = sp.SpecConfig(mode='spec', exec_len=6)
  B, T = 4, 4
  rng = np.random.default_rng(0)
  forced = dict(none=np.zeros((T, B), bool), all=np.ones((T, B), bool),
                one=np.eye(B, dtype=bool)[[1, 3, 0, 2]], random=rng.random((T, B)) < 0.5)[pattern]
  obs = jax.random.normal(jax.random.PRNGKey(0), (T + 1, B, 5))
  keys = jax.random.split(jax.random.PRNGKey(1), (T + 1) * B).reshape(T + 1, B, 2)
  ex, xp = sp.Executor(wm, pc, cfg), sp.ExecParams(params)
  state = sp.batch_state(sp.init_state(ex), B)
  singles = [sp.init_state(ex) for _ in range(B)]
  batched = dict(compact=sp.step_batch_compact, sequential=sp.step_batch_sequential)[runner]
  for t in range(T + 1):
    taus = jnp.where(jnp.asarray(forced[t - 1]), 0.0, 1e9) if t else jnp.full((B,), 1e9)
    a, state, info = batched(ex, xp, state, obs[t], keys[t], taus, jnp.full((B,), t == 0))
    want = np.ones(B, bool) if t == 0 else forced[t - 1]
    np.testing.assert_array_equal(info.replanned, want)
    for i in range(B):
      ai, singles[i], _ = sp.step(ex, xp, singles[i], obs[t, i], keys[t, i], taus[i], t == 0)
      np.testing.assert_allclose(a[i], ai, atol=1e-5)
      np.testing.assert_allclose(state.planner.prev_mean[i], singles[i].planner.prev_mean,
                                 atol=1e-5)
      np.testing.assert_allclose(state.latent_queue[i], singles[i].latent_queue, atol=1e-5)
  np.testing.assert_array_equal(state.planner_calls, [s.planner_calls for s in singles])


def test_capacities_and_executed_plans():
  # Granule ceil(B / 8): powers of two below it, then its multiples.
  assert sp.capacities(5) == (1, 2, 3, 4, 5) and sp.capacities(1) == (1,)
  assert sp.capacities(64) == (1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64)
  assert sp.capacities(20) == (1, 2, 3, 6, 9, 12, 15, 18, 20)
  assert sp.capacities(64, steps=4) == (1, 2, 4, 8, 16, 32, 48, 64)   # granule 16
  assert [sp.executed_plans(n, 64) for n in (0, 1, 3, 9, 17, 25, 57, 64)] == [
      0, 1, 4, 16, 24, 32, 64, 64]
  with pytest.raises(ValueError, match='batch >= 1'):
    sp.capacities(0)


@pytest.mark.parametrize('batched', [sp.step_batch_compact, pytest.param(
    sp.step_batch_sequential, marks=pytest.mark.slow)], ids=['compact', 'sequential'])
def test_batched_steps_take_a_task_id_per_environment(batched):
  # Multitask model (2 tasks, action dims 1 and 2): B = 2 environments on tasks (1, 0); at the
  # second step only env 1 replans (tau = 0), so the compact step gathers ONE task id (task 0,
  # not the first environment's task 1).
  wm = world_model.WorldModel(config.model_config(1, 5, 2, latent_dim=32, mlp_dim=64, enc_dim=64,
                                                  num_tasks=2, task_dim=8, action_dims=(1, 2)))
  params = toy.nonzero_heads(wm.init(jax.random.PRNGKey(0)))   # no ties broken by rounding
  pc = config.PlannerConfig(horizon=3, iterations=2, num_samples=32, num_elites=4,
                            num_pi_trajs=4)
  ex, xp = sp.Executor(wm, pc, sp.SpecConfig(mode='spec', exec_len=3)), sp.ExecParams(params)
  B, tasks = 2, jnp.array([1, 0])
  obs = jax.random.normal(jax.random.PRNGKey(1), (2, B, 5))
  keys = jax.random.split(jax.random.PRNGKey(2), 2 * B).reshape(2, B, 2)
  taus = (jnp.full((B,), 1e9), jnp.array([1e9, 0.0]))
  # step_batch / step_batch_shared share _check_batch and _replan_batch; the two steps sweeps
  # use (compact, sequential; the latter with -m slow) are compared with single steps here.
  state, singles = sp.batch_state(sp.init_state(ex), B), [sp.init_state(ex)] * B
  for t in range(2):
    a, state, info = batched(ex, xp, state, obs[t], keys[t], taus[t], jnp.full((B,), t == 0),
                             task=tasks)
    for i in range(B):
      ai, singles[i], _ = sp.step(ex, xp, singles[i], obs[t, i], keys[t, i], taus[t][i], t == 0,
                                  task=tasks[i])
      np.testing.assert_allclose(a[i], ai, atol=1e-5)
      np.testing.assert_allclose(state.latent_queue[i], singles[i].latent_queue, atol=1e-5)
  np.testing.assert_array_equal(info.replanned, [False, True])
  assert float(a[1, 1]) == 0.0 and float(a[0, 1]) != 0.0    # task 0 has one action dim
  with pytest.raises(ValueError, match='multitask'):
    sp.step_batch_compact(ex, xp, state, obs[0], keys[0], 1e9, False)
