"""Plan-ahead: a plan made from the predicted latent where the queue runs out is adopted at that
step if the gate accepts, with no planner call; rejected, the executor replans as before."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import config
from spec_jax import evaluation
from spec_jax import planner
from spec_jax import speculation as sp
import toy

PC = config.PlannerConfig(horizon=3, iterations=2, num_samples=32, num_elites=4, num_pi_trajs=4)
CFG = sp.SpecConfig(mode='spec', exec_len=2)
EX = sp.Executor(toy.ToyModel(), PC, CFG)
XP = sp.ExecParams(toy.TOY_PARAMS)


def _step(state, obs, tau, t0, ready=None, key=0):
  return sp.step(EX, XP, state, jnp.asarray(obs, jnp.float32), jax.random.PRNGKey(key), tau, t0,
                 ready)


def _hand_ready(z_seed):
  """A hand-made ready plan seeded at z_seed (toy dynamics z' = z + 0.5 a)."""
  actions = np.array([[0.5, -0.5, 0.25], [0.1, 0.2, -0.3], [-0.4, 0.0, 0.6]], np.float32)
  latents = np.concatenate([z_seed[None], z_seed + 0.5 * np.cumsum(actions, axis=0)])
  mean = np.full((3, 3), 0.125, np.float32)
  return sp.ReadyPlan(jnp.asarray(actions), jnp.asarray(latents, jnp.float32), jnp.asarray(mean),
                      jnp.ones((), bool)), actions, latents, mean


def _to_queue_end(obs0):
  state = sp.init_state(EX)
  _, state, _ = _step(state, obs0, 1e9, True)
  q = np.asarray(state.action_queue)
  z1 = obs0 + 0.5 * q[0]
  _, state, _ = _step(state, z1, 1e9, False, key=1)
  assert int(state.index) == 2           # queue end (exec_len 2)
  return state, z1 + 0.5 * q[1]          # the predicted latent at the queue end


@pytest.mark.parametrize('jit', [True, pytest.param(False, marks=pytest.mark.slow)],
                         ids=['jit', 'nojit'])
def test_ready_plan_is_adopted_when_the_gate_accepts(jit):
  obs0 = np.array([0.1, 0.2, -0.3], np.float32)
  state, z_end = _to_queue_end(obs0)
  ready, actions, latents, mean = _hand_ready(z_end)
  fn = sp.step if jit else sp.step.__wrapped__
  delta = np.array([0.0, 0.06, 0.08], np.float32)      # d = 0.1 < tau = 0.5
  a, s2, info = fn(EX, XP, state, jnp.asarray(z_end + delta), jax.random.PRNGKey(2), 0.5, False,
                   ready)
  assert bool(info.adopted) and not bool(info.replanned) and not bool(info.fallback)
  np.testing.assert_allclose(info.d, 0.1, rtol=1e-5)
  np.testing.assert_array_equal(a, actions[0])          # first action of the ready plan
  np.testing.assert_array_equal(s2.action_queue, actions)
  np.testing.assert_allclose(s2.latent_queue, latents, atol=1e-6)
  np.testing.assert_array_equal(s2.planner.prev_mean, mean)
  assert int(s2.index) == 1 and int(s2.planner_calls) == 1 and int(s2.adopted) == 1
  # The next step verifies against the ready plan's own prediction z_end + 0.5 a_0.
  _, s3, info3 = _step(s2, latents[1], 0.5, False, key=3)
  np.testing.assert_allclose(info3.z_hat, z_end + 0.5 * actions[0], atol=1e-6)
  assert float(info3.d) < 1e-6 and int(info3.k) == 1 and not bool(info3.replanned)


def test_rejected_ready_plan_falls_back_to_a_fresh_plan():
  obs0 = np.array([0.1, 0.2, -0.3], np.float32)
  state, z_end = _to_queue_end(obs0)
  ready, actions, _, _ = _hand_ready(z_end)
  obs = z_end + np.array([0.0, 0.42, 0.56], np.float32)   # d = 0.7 > tau = 0.5
  a, s2, info = _step(state, obs, 0.5, False, ready, key=2)
  assert bool(info.replanned) and bool(info.fallback) and not bool(info.adopted)
  # Exactly the step the paper's executor takes without a ready plan.
  a_ref, s_ref, info_ref = _step(state, obs, 0.5, False, None, key=2)
  assert bool(info_ref.replanned) and not bool(info_ref.fallback)
  np.testing.assert_allclose(a, a_ref, atol=1e-6)
  np.testing.assert_allclose(s2.planner.prev_mean, s_ref.planner.prev_mean, atol=1e-6)
  assert int(s2.planner_calls) == 2 and int(s2.adopted) == 0
  assert not np.allclose(a, actions[0])


def test_ready_plan_is_ignored_before_the_queue_end():
  obs0 = np.array([0.1, 0.2, -0.3], np.float32)
  state = sp.init_state(EX)
  _, state, _ = _step(state, obs0, 1e9, True)
  ready, _, _, _ = _hand_ready(np.zeros(3, np.float32))
  a, s2, info = _step(state, obs0 + 0.5 * np.asarray(state.action_queue[0]), 1e9, False, ready)
  assert not bool(info.adopted) and int(s2.index) == 2
  np.testing.assert_array_equal(a, state.action_queue[1])


@pytest.mark.slow
def test_plan_from_latent_equals_plan_from_observation():
  wm, params = toy.small_agent()
  obs = jnp.sin(jnp.arange(5.0))
  st = planner.init_state(PC, 1)
  key = jax.random.PRNGKey(4)
  a, _ = planner.plan(wm, params, PC, st, obs, key, True, True)
  b, _ = planner.plan_from_latent(wm, params, PC, st, wm.encode(params, obs), key, True, True)
  np.testing.assert_allclose(a.actions, b.actions, atol=1e-5)   # jit fusion rounding only
  np.testing.assert_allclose(a.mean, b.mean, atol=1e-5)


@pytest.mark.slow
def test_plan_ahead_seeds_at_the_queue_end_with_shifted_warm_start():
  wm, params = toy.small_agent()
  ex = sp.Executor(wm, PC, CFG)
  xp = sp.ExecParams(params)
  _, state, _ = sp.step(ex, xp, sp.init_state(ex), jnp.sin(jnp.arange(5.0)),
                        jax.random.PRNGKey(0), 1e9, True)
  key = jax.random.PRNGKey(5)
  ready = sp.plan_ahead(ex, xp, state, key)
  ref, pst = planner.plan_from_latent(wm, params, PC, state.planner, state.latent_queue[2], key,
                                      False, True, shift=2)
  np.testing.assert_allclose(ready.actions, ref.actions, atol=1e-6)
  np.testing.assert_allclose(ready.latents[0], state.latent_queue[2], atol=1e-6)
  np.testing.assert_allclose(ready.prev_mean, pst.prev_mean, atol=1e-6)
  wrong, _ = planner.plan_from_latent(wm, params, PC, state.planner, state.latent_queue[1], key,
                                      False, True, shift=2)
  assert not np.allclose(wrong.actions, ref.actions, atol=1e-4)


def test_runner_with_plan_ahead_counts_by_hand():
  # tau = 1e9 accepts everything: exec_len 2, 7 steps -> one blocking plan at t0, ready plans
  # adopted at t = 2, 4, 6, plan-ahead dispatched after t = 0, 2, 4, 6.
  wm, params = toy.small_agent()
  ex = sp.Executor(wm, PC, CFG)
  env = toy.FakeEnv(np.sin(np.arange(35.0)).reshape(7, 5), 1)
  out = evaluation.run_episode(ex, sp.ExecParams(params), env, jax.random.PRNGKey(0), 0, 1e9,
                               evaluation.Runtime(plan_ahead=True))
  assert (out['planner_calls'], out['adopted'], out['ahead_calls']) == (1, 3, 4)
  assert out['replanned'] == [True] + [False] * 6 and len(out['step_ms']) == 7
  # tau = 0 rejects every ready plan: action for action the paper's executor at tau = 0.
  env_a = toy.FakeEnv(np.sin(np.arange(35.0)).reshape(7, 5), 1)
  env_b = toy.FakeEnv(np.sin(np.arange(35.0)).reshape(7, 5), 1)
  a = evaluation.run_episode(ex, sp.ExecParams(params), env_a, jax.random.PRNGKey(0), 0, 0.0,
                             evaluation.Runtime(plan_ahead=True))
  b = evaluation.run_episode(ex, sp.ExecParams(params), env_b, jax.random.PRNGKey(0), 0, 0.0)
  np.testing.assert_allclose(np.stack(env_a.actions), np.stack(env_b.actions), atol=1e-6)
  assert a['adopted'] == 0 and a['planner_calls'] == b['planner_calls'] == 7


@pytest.mark.slow
def test_multitask_executor_takes_a_task_id():
  from spec_jax import world_model
  wm = world_model.WorldModel(config.model_config(1, 5, 2, latent_dim=32, mlp_dim=64, enc_dim=64,
                                                  num_tasks=2, task_dim=8, action_dims=(1, 2)))
  params = wm.init(jax.random.PRNGKey(0))
  ex = sp.Executor(wm, PC, CFG)
  xp = sp.ExecParams(params)
  obs, key = jnp.sin(jnp.arange(5.0)), jax.random.PRNGKey(1)
  a0, s0, _ = sp.step(ex, xp, sp.init_state(ex), obs, key, 1e9, True, task=0)
  ref, _ = planner.plan(wm, params, PC, planner.init_state(PC, 2), obs, key, True, True, task=0)
  np.testing.assert_allclose(a0, ref.action, atol=1e-5)
  assert float(a0[1]) == 0.0 and np.all(np.asarray(s0.action_queue)[:, 1] == 0.0)  # masked
  a1, _, _ = sp.step(ex, xp, sp.init_state(ex), obs, key, 1e9, True, task=1)
  assert float(a1[1]) != 0.0
  ready = sp.plan_ahead(ex, xp, s0, key, task=0)
  assert np.all(np.asarray(ready.actions)[:, 1] == 0.0)
  with pytest.raises(ValueError, match='task'):
    sp.step(ex, xp, sp.init_state(ex), obs, key, 1e9, True)


# ---- anytime fallback: the replans the gate forces use a cheaper planner -------------------
CHEAP = config.PlannerConfig(horizon=3, iterations=1, num_samples=16, num_elites=2,
                             num_pi_trajs=2)
EX_FB = sp.Executor(toy.ToyModel(), PC, CFG, fallback_planner=CHEAP)


def _direct_plan(pcfg, mean, obs, key, shift, t0=False):
  res, pst = planner.plan(EX.model, XP.model, pcfg, planner.PlannerState(prev_mean=mean),
                          jnp.asarray(obs, jnp.float32), jax.random.PRNGKey(key), t0, True,
                          shift=shift)
  return res, pst


def test_rejected_ready_plan_falls_back_to_the_cheap_planner_from_the_ready_mean():
  obs0 = np.array([0.1, 0.2, -0.3], np.float32)
  state, z_end = _to_queue_end(obs0)
  ready, _, _, mean = _hand_ready(z_end)
  obs = z_end + np.array([0.0, 0.42, 0.56], np.float32)   # d = 0.7 > tau = 0.5
  a, s2, info = sp.step(EX_FB, XP, state, jnp.asarray(obs), jax.random.PRNGKey(2), 0.5, False,
                        ready)
  assert bool(info.replanned) and bool(info.fallback) and int(s2.planner_calls) == 2
  # The ready plan was made for this step: its mean is the warm start, not shifted.
  ref, pst = _direct_plan(CHEAP, jnp.asarray(mean), obs, 2, 0)
  np.testing.assert_allclose(a, ref.action, atol=1e-6)
  np.testing.assert_allclose(s2.action_queue, ref.actions, atol=1e-6)
  np.testing.assert_allclose(s2.planner.prev_mean, pst.prev_mean, atol=1e-6)
  full, _ = _direct_plan(PC, state.planner.prev_mean, obs, 2, 2)
  assert not np.allclose(a, full.action, atol=1e-3)


def test_mid_queue_fallback_is_cheap_and_other_replans_are_full():
  obs0 = np.array([0.1, 0.2, -0.3], np.float32)
  state = sp.init_state(EX_FB)
  a0, state, info0 = sp.step(EX_FB, XP, state, jnp.asarray(obs0), jax.random.PRNGKey(0), 1e9,
                             True)
  full0, _ = _direct_plan(PC, sp.init_state(EX).planner.prev_mean, obs0, 0, 0, t0=True)
  np.testing.assert_allclose(a0, full0.action, atol=1e-6)           # t0: the full planner
  obs1 = obs0 + 0.5 * np.asarray(state.action_queue[0]) + np.array([0.0, 0.6, 0.8], np.float32)
  a1, s1, info1 = sp.step(EX_FB, XP, state, jnp.asarray(obs1), jax.random.PRNGKey(1), 0.5, False)
  assert bool(info1.fallback) and int(info1.k) == 1
  ref, _ = _direct_plan(CHEAP, state.planner.prev_mean, obs1, 1, 1)  # current mean, shifted 1
  np.testing.assert_allclose(a1, ref.action, atol=1e-6)
  # Queue exhausted with no ready plan: not a fallback, the full planner.
  _, s2, _ = sp.step(EX_FB, XP, state, jnp.asarray(obs1), jax.random.PRNGKey(1), 1e9, False)
  a3, _, info3 = sp.step(EX_FB, XP, s2, jnp.asarray(obs0), jax.random.PRNGKey(3), 1e9, False)
  assert bool(info3.replanned) and not bool(info3.fallback)
  ref3, _ = _direct_plan(PC, s2.planner.prev_mean, obs0, 3, 2)
  np.testing.assert_allclose(a3, ref3.action, atol=1e-6)


def test_fallback_planner_config_checked_and_reported():
  with pytest.raises(ValueError, match='fallback_planner horizon'):
    sp.Executor(toy.ToyModel(), PC, CFG, fallback_planner=config.PlannerConfig(horizon=2))
  pts = evaluation.grid([dict(modes=('spec',), exec_lens=(2,), taus=(0.5,), plan_ahead=True,
                              fallback_planner=dict(iterations=1, num_samples=16))], None)
  ex, _, _ = evaluation.executor_for(pts[1], toy.ToyModel(), PC, PC, {})
  assert (ex.fallback_planner.iterations, ex.fallback_planner.num_samples) == (1, 16)
  assert ex.fallback_planner.num_elites == PC.num_elites and ex.planner == PC
  assert evaluation.label(ex, evaluation.Runtime(plan_ahead=True)) == (
      'spec+ahead+fallback(1x16) H=2')
  assert evaluation.fallback_label(ex) == 'iterations=1,num_samples=16'
  pts = evaluation.grid([dict(modes=('spec',), exec_lens=(2,), taus=(0.5,), plan_ahead=True,
                              fallback_planner=dict(num_elites=2))], None)
  ex, _, _ = evaluation.executor_for(pts[1], toy.ToyModel(), PC, PC, {})
  assert evaluation.label(ex, evaluation.Runtime(plan_ahead=True)) == (
      'spec+ahead+fallback(num_elites=2) H=2')
  # A local-search fallback (small initial std) keeps its std in the executor and the label.
  pts = evaluation.grid([dict(modes=('spec',), exec_lens=(2,), taus=(0.0,), plan_ahead=True,
                              fallback_planner=dict(iterations=1, num_samples=16,
                                                    init_std=0.25))], None)
  ex, _, _ = evaluation.executor_for(pts[1], toy.ToyModel(), PC, PC, {})
  assert ex.fallback_planner.init_std == 0.25 and ex.planner.init_std is None
  assert evaluation.label(ex, evaluation.Runtime(plan_ahead=True)) == (
      'spec+ahead+fallback(1x16/s0.25) H=2')


def test_timed_episodes_compile_nothing_after_the_warm_up():
  # A step variant compiled inside an episode shows up as seconds of "decision latency".
  wm, params = toy.small_agent()
  pc = config.PlannerConfig(horizon=3, iterations=1, num_samples=24, num_elites=3, num_pi_trajs=3)
  ex = sp.Executor(wm, pc, CFG)
  env = toy.FakeEnv(np.sin(np.arange(35.0)).reshape(7, 5), 1)
  before = sp.step._cache_size()
  evaluation.evaluate_mode(ex, sp.ExecParams(params), env, 1e9, 1, jax.random.PRNGKey(0),
                           runtime=evaluation.Runtime(plan_ahead=True))
  assert sp.step._cache_size() == before + 1     # the warm-up's variant only


# ---- on_reject='defer': a rejected step corrects now, the host plans ahead for the next ------
CFG_D = sp.SpecConfig(mode='spec', exec_len=2, on_reject='defer')
EX_D = sp.Executor(toy.ToyModel(), PC, CFG_D, fallback_planner=CHEAP)


def test_deferred_rejection_continues_the_ready_plan_without_a_planner_call():
  obs0 = np.array([0.1, 0.2, -0.3], np.float32)
  state, z_end = _to_queue_end(obs0)                        # EX and EX_D share the state layout
  ready, actions, latents, mean = _hand_ready(z_end)
  obs = z_end + np.array([0.0, 0.42, 0.56], np.float32)   # d = 0.7 > tau = 0.5
  a, s2, info = sp.step(EX_D, XP, state, jnp.asarray(obs), jax.random.PRNGKey(2), 0.5, False,
                        ready)
  assert bool(info.deferred) and not bool(info.fallback)   # no replan: not a fallback
  assert not bool(info.replanned) and not bool(info.adopted)
  np.testing.assert_allclose(info.d, 0.7, rtol=1e-5)
  np.testing.assert_array_equal(a, actions[0])             # 'spec': the uncorrected a_0
  np.testing.assert_array_equal(s2.action_queue, actions)
  np.testing.assert_array_equal(s2.planner.prev_mean, mean)
  assert int(s2.index) == 1 and int(s2.planner_calls) == 1
  assert (int(s2.deferred), int(s2.fallbacks), int(s2.adopted)) == (1, 0, 0)
  # Accepted: adopted as with on_reject='replan', nothing deferred.
  _, s3, info3 = sp.step(EX_D, XP, state, jnp.asarray(z_end), jax.random.PRNGKey(2), 0.5, False,
                         ready)
  assert bool(info3.adopted) and not bool(info3.deferred) and int(s3.adopted) == 1


def test_rescue_plan_seeds_at_the_one_step_prediction_of_the_real_latent():
  obs0 = np.array([0.1, 0.2, -0.3], np.float32)
  state, z_end = _to_queue_end(obs0)
  ready, _, _, _ = _hand_ready(z_end)
  obs = z_end + np.array([0.0, 0.42, 0.56], np.float32)
  a, s2, info = sp.step(EX_D, XP, state, jnp.asarray(obs), jax.random.PRNGKey(2), 0.5, False,
                        ready)
  key = jax.random.PRNGKey(7)
  rescue = sp.rescue_plan(EX_D, XP, s2, info.z_real, a, key)
  z_next = obs + 0.5 * np.asarray(a)                       # toy dynamics from the REAL latent
  np.testing.assert_allclose(rescue.latents[0], z_next, atol=1e-6)
  ref, pst = planner.plan_from_latent(EX.model, XP.model, CHEAP, s2.planner, jnp.asarray(z_next),
                                      key, False, True, shift=1)   # cheap planner, shift index 1
  np.testing.assert_allclose(rescue.actions, ref.actions, atol=1e-6)
  np.testing.assert_allclose(rescue.prev_mean, pst.prev_mean, atol=1e-6)
  assert bool(rescue.valid)
  full, _ = planner.plan_from_latent(EX.model, XP.model, PC, s2.planner, jnp.asarray(z_next),
                                     key, False, True, shift=1)
  assert not np.allclose(rescue.actions, full.actions, atol=1e-3)


def test_rescue_plan_offered_mid_queue_is_verified_against_its_own_seed():
  cfg = sp.SpecConfig(mode='spec', exec_len=3, on_reject='defer')
  ex = sp.Executor(toy.ToyModel(), PC, cfg)
  obs0 = np.array([0.1, 0.2, -0.3], np.float32)
  _, s0, _ = sp.step(ex, XP, sp.init_state(ex), jnp.asarray(obs0), jax.random.PRNGKey(0), 0.5,
                     True)
  obs1 = obs0 + 0.5 * np.asarray(s0.action_queue[0]) + np.array([0.0, 0.6, 0.8], np.float32)
  a1, s1, info1 = sp.step(ex, XP, s0, jnp.asarray(obs1), jax.random.PRNGKey(1), 0.5, False)
  assert bool(info1.deferred) and int(s1.index) == 2        # mid-queue: the queue continues
  np.testing.assert_array_equal(a1, s0.action_queue[1])
  rescue = sp.rescue_plan(ex, XP, s1, info1.z_real, a1, jax.random.PRNGKey(5))
  obs2 = obs1 + 0.5 * np.asarray(a1) + np.array([0.03, 0.0, 0.04], np.float32)   # d = 0.05
  a2, s2, info2 = sp.step(ex, XP, s1, jnp.asarray(obs2), jax.random.PRNGKey(2), 0.5, False,
                          rescue)
  np.testing.assert_allclose(info2.z_hat, rescue.latents[0], atol=1e-6)
  np.testing.assert_allclose(info2.d, 0.05, rtol=1e-4)
  assert bool(info2.adopted) and not bool(info2.replanned) and int(s2.index) == 1
  np.testing.assert_array_equal(a2, rescue.actions[0])


def test_runner_with_deferred_rejections_counts_by_hand():
  # tau = 0 rejects every verified step: one blocking plan at t0, then six deferred steps; a
  # plan-ahead after t0, a rescue plan after each deferred step (offered at t = 2..6).
  wm, params = toy.small_agent()
  ex = sp.Executor(wm, PC, CFG_D, fallback_planner=CHEAP)
  env = toy.FakeEnv(np.sin(np.arange(35.0)).reshape(7, 5), 1)
  out = evaluation.run_episode(ex, sp.ExecParams(params), env, jax.random.PRNGKey(0), 0, 0.0,
                               evaluation.Runtime(plan_ahead=True))
  assert (out['planner_calls'], out['deferred'], out['adopted']) == (1, 6, 0)
  assert (out['ahead_calls'], out['ready_offered']) == (7, 5)
  assert out['replanned'] == [True] + [False] * 6
  assert np.all(np.isfinite(np.stack(env.actions)))


def test_defer_config_checked_and_labelled():
  with pytest.raises(ValueError, match='on_reject'):
    sp.SpecConfig(on_reject='wait')
  with pytest.raises(ValueError, match='plan_ahead'):
    evaluation.grid([dict(modes=('spec',), exec_lens=(2,), taus=(0.5,), on_reject='defer')], None)
  # Without rescue plans a deferred rejection would continue its queue: refused.
  with pytest.raises(ValueError, match='plan_ahead'):
    evaluation.run_episode(EX_D, XP, toy.FakeEnv(np.zeros((2, 3)), 3), jax.random.PRNGKey(0), 0,
                           0.5)
  with pytest.raises(ValueError, match='defer'):
    sp.step_batch_compact(EX_D, XP, sp.batch_state(sp.init_state(EX_D), 2), jnp.zeros((2, 3)),
                          jax.random.split(jax.random.PRNGKey(0), 2), 0.5, True)
  pts = evaluation.grid([dict(modes=('spec',), exec_lens=(2,), taus=(0.5,), plan_ahead=True,
                              on_reject='defer')], None)
  ex, _, _ = evaluation.executor_for(pts[1], toy.ToyModel(), PC, PC, {})
  assert ex.spec.on_reject == 'defer'
  assert evaluation.label(ex, evaluation.Runtime(plan_ahead=True)) == 'spec+ahead+defer H=2'


@pytest.mark.slow   # its twin for the paper's executor stays in the default run
def test_deferred_episodes_compile_nothing_after_the_warm_up():
  wm, params = toy.small_agent()
  pc = config.PlannerConfig(horizon=3, iterations=1, num_samples=24, num_elites=3, num_pi_trajs=3)
  ex = sp.Executor(wm, pc, CFG_D)
  env = toy.FakeEnv(np.sin(np.arange(35.0)).reshape(7, 5), 1)
  before = sp.step._cache_size(), sp.rescue_plan._cache_size()
  row = evaluation.evaluate_mode(ex, sp.ExecParams(params), env, 0.0, 1, jax.random.PRNGKey(0),
                                 runtime=evaluation.Runtime(plan_ahead=True))
  assert row['deferred'] == 6 and row['on_reject'] == 'defer'
  assert (sp.step._cache_size(), sp.rescue_plan._cache_size()) == (before[0] + 1, before[1] + 1)
