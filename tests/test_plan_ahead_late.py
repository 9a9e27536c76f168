"""Late plan-ahead (Runtime.ahead_lead = L): the next plan is made L steps before the queue end,
from the L-step prediction of the latest REAL latent, with the full planner, and offered at the
queue end like any plan made ahead."""
import time
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import config
from spec_jax import correctors
from spec_jax import evaluation
from spec_jax import planner
from spec_jax import speculation as sp
import toy

PC = config.PlannerConfig(horizon=3, iterations=2, num_samples=32, num_elites=4, num_pi_trajs=4)
CHEAP = config.PlannerConfig(horizon=3, iterations=1, num_samples=16, num_elites=2,
                             num_pi_trajs=2)
CFG3 = sp.SpecConfig(mode='spec', exec_len=3)
XP = sp.ExecParams(toy.TOY_PARAMS)


def test_late_plan_seeds_at_the_lead_step_prediction_of_the_real_latent():
  # Toy dynamics z' = z + 0.5 a, encoder = identity. Queue of 3; after the step at queue
  # index 1 (state.index 2) a lead-2 plan is seeded at z_real + 0.5 a + 0.5 queue[2], shift 3.
  ex = sp.Executor(toy.ToyModel(), PC, CFG3, fallback_planner=CHEAP)
  obs0 = np.array([0.1, 0.2, -0.3], np.float32)
  a0, s0, info0 = sp.step(ex, XP, sp.init_state(ex), jnp.asarray(obs0), jax.random.PRNGKey(0),
                          1e9, True)
  obs1 = obs0 + 0.5 * np.asarray(s0.action_queue[0]) + np.array([0.05, 0.0, 0.1], np.float32)
  a1, s1, info1 = sp.step(ex, XP, s0, jnp.asarray(obs1), jax.random.PRNGKey(1), 1e9, False)
  assert int(s1.index) == 2
  key = jax.random.PRNGKey(7)
  a1 = a1 + jnp.array([0.1, -0.2, 0.05])   # an emitted (corrected) action, not the queued one
  ready = sp.plan_ahead_late(ex, XP, s1, info1.z_real, a1, key, lead=2)
  seed = obs1 + 0.5 * np.asarray(a1) + 0.5 * np.asarray(s1.action_queue[2])
  np.testing.assert_allclose(ready.latents[0], seed, atol=1e-6)
  ref, pst = planner.plan_from_latent(ex.model, XP.model, PC, s1.planner, jnp.asarray(seed), key,
                                      False, True, shift=3)       # the FULL planner, shift E
  np.testing.assert_allclose(ready.actions, ref.actions, atol=1e-6)
  np.testing.assert_allclose(ready.prev_mean, pst.prev_mean, atol=1e-6)
  assert bool(ready.valid)
  wrong, _ = planner.plan_from_latent(ex.model, XP.model, PC, s1.planner, jnp.asarray(seed), key,
                                      False, True, shift=2)
  assert not np.allclose(wrong.actions, ref.actions, atol=1e-4)
  one = sp.plan_ahead_late(ex, XP, s1, info1.z_real, a1, key, lead=1)   # lead 1: one step
  np.testing.assert_allclose(one.latents[0], obs1 + 0.5 * np.asarray(a1), atol=1e-6)
  q = np.asarray(s0.action_queue)    # lead 3 = E, right after the plan: a0 then queue[1], [2]
  three = sp.plan_ahead_late(ex, XP, s0, info0.z_real, a0, key, lead=3)
  np.testing.assert_allclose(three.latents[0], obs0 + 0.5 * (np.asarray(a0) + q[1] + q[2]),
                             atol=1e-6)
  # lead = E right after a replan (emitted = planned action) is the classic plan-ahead.
  classic = sp.plan_ahead(ex, XP, s0, key)
  np.testing.assert_allclose(three.latents[0], classic.latents[0], atol=1e-5)
  np.testing.assert_allclose(three.actions, classic.actions, atol=1e-5)
  for bad in (0, 4):
    with pytest.raises(ValueError, match='lead'):
      sp.plan_ahead_late(ex, XP, s1, info1.z_real, a1, key, lead=bad)


def _by_hand(ex, params, obs_seq, key, tau, lead):
  """The runner's schedule written out: keys as run_episode draws them; a late plan made after
  the step that leaves lead - 1 queued actions, offered at the queue end."""
  state, pending, actions = sp.init_state(ex), None, []
  E = ex.spec.exec_len
  for t, obs in enumerate(obs_seq):
    key, step_key = jax.random.split(key)
    ready = pending if pending is not None and int(state.index) >= E else None
    action, state, info = sp.step(ex, params, state, jnp.asarray(obs), step_key, tau, t == 0,
                                  ready)
    if ready is not None or bool(info.replanned):
      pending = None
    if int(state.index) == E - lead + 1:
      pending = sp.plan_ahead_late(ex, params, state, info.z_real, action,
                                   jax.random.fold_in(step_key, 1), lead=lead)
    actions.append(np.asarray(action))
  return np.stack(actions), state


def _mlp_agent(exec_len=2, on_reject='replan'):
  """The small world model with an MLP corrector whose corrections are far from zero (so the
  emitted action differs from the queued one)."""
  wm, params = toy.small_agent()
  cor = correctors.Corrector(correctors.CorrectorConfig(kind='mlp'), 32, 1)
  cparams = cor.init(jax.random.PRNGKey(3))
  leaves, tree = jax.tree_util.tree_flatten(cparams)
  keys = jax.random.split(jax.random.PRNGKey(4), len(leaves))
  cparams = jax.tree_util.tree_unflatten(
      tree, [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])
  ex = sp.Executor(wm, PC, sp.SpecConfig(mode='mlp', exec_len=exec_len, on_reject=on_reject),
                   cor)
  return ex, sp.ExecParams(params, cparams)


OBS = np.sin(np.arange(35.0)).reshape(7, 5)


@pytest.mark.parametrize('lead', [1, pytest.param(2, marks=pytest.mark.slow)])  # 2: -m slow
def test_runner_with_late_plan_ahead_matches_the_schedule_by_hand(lead):
  # exec_len 2, 7 steps, tau 1e9 (every ready plan accepted): one blocking plan at t0, ready
  # plans adopted at t = 2, 4, 6; lead 1 dispatches after t = 1, 3, 5 (3 plans), lead 2 after
  # t = 0, 2, 4, 6 (4 plans). MLP corrector: the seed takes the emitted (corrected) action.
  ex, xp = _mlp_agent()
  env = toy.FakeEnv(OBS, 1)
  out = evaluation.run_episode(ex, xp, env, jax.random.PRNGKey(0), 0, 1e9,
                               evaluation.Runtime(plan_ahead=True, ahead_lead=lead))
  assert (out['planner_calls'], out['adopted']) == (1, 3)
  assert (out['ahead_calls'], out['ready_offered']) == ({1: 3, 2: 4}[lead], 3)
  assert (out['end_offered'], out['end_adopted']) == (3, 3)
  ref, state = _by_hand(ex, xp, OBS, jax.random.PRNGKey(0), 1e9, lead)
  np.testing.assert_allclose(np.stack(env.actions), ref, atol=1e-6)
  assert int(state.adopted) == 3
  # The seed matters: the classic plan-ahead (lead 0, the plan's own prediction) acts otherwise.
  env0 = toy.FakeEnv(OBS, 1)
  evaluation.run_episode(ex, xp, env0, jax.random.PRNGKey(0), 0, 1e9,
                         evaluation.Runtime(plan_ahead=True))
  assert not np.allclose(np.stack(env0.actions), ref, atol=1e-4)


def test_pipelined_plan_ahead_plans_every_step_from_the_previous_real_latent():
  # E = 1, lead 1: after EVERY step a plan is seeded at d(z_real, emitted action) and offered to
  # the next step; tau 1e9 accepts all six, so only t0 waits for a plan.
  ex, xp = _mlp_agent(exec_len=1)
  env = toy.FakeEnv(OBS, 1)
  out = evaluation.run_episode(ex, xp, env, jax.random.PRNGKey(0), 0, 1e9,
                               evaluation.Runtime(plan_ahead=True, ahead_lead=1))
  assert (out['planner_calls'], out['adopted'], out['ahead_calls']) == (1, 6, 7)
  assert (out['ready_offered'], out['end_offered'], out['end_adopted']) == (6, 6, 6)
  ref, _ = _by_hand(ex, xp, OBS, jax.random.PRNGKey(0), 1e9, 1)
  np.testing.assert_allclose(np.stack(env.actions), ref, atol=1e-5)
  # Deferred rejections with E = 1 act exactly as accepting everything: a rejected plan is
  # continued (corrected) and its rescue plan has the late plan's seed, planner and key.
  ex_d, _ = _mlp_agent(exec_len=1, on_reject='defer')
  env_d = toy.FakeEnv(OBS, 1)
  d = evaluation.run_episode(ex_d, xp, env_d, jax.random.PRNGKey(0), 0, 0.0,
                             evaluation.Runtime(plan_ahead=True, ahead_lead=1))
  assert (d['planner_calls'], d['deferred'], d['adopted'], d['ahead_calls']) == (1, 6, 0, 7)
  np.testing.assert_allclose(np.stack(env_d.actions), ref, atol=1e-5)


@pytest.mark.parametrize('lead', [1, pytest.param(2, marks=pytest.mark.slow)])  # 2: -m slow
def test_late_plan_ahead_with_rejections_deferrals_and_a_nan(lead):
  ex, xp = _mlp_agent()
  # tau = 0 rejects every verified step: each replans, no queue reaches its end, so it acts as
  # the paper's executor action for action (lead 2 still plans after every replan).
  env_a, env_b = toy.FakeEnv(OBS, 1), toy.FakeEnv(OBS, 1)
  a = evaluation.run_episode(ex, xp, env_a, jax.random.PRNGKey(0), 0, 0.0,
                             evaluation.Runtime(plan_ahead=True, ahead_lead=lead))
  b = evaluation.run_episode(ex, xp, env_b, jax.random.PRNGKey(0), 0, 0.0)
  np.testing.assert_allclose(np.stack(env_a.actions), np.stack(env_b.actions), atol=1e-6)
  assert (a['planner_calls'], a['adopted'], a['ready_offered']) == (7, 0, 0)
  assert a['ahead_calls'] == {1: 0, 2: 7}[lead]
  # Deferred rejections: a rescue plan (not a late plan) follows every deferred step.
  ex_d = sp.Executor(ex.model, PC, sp.SpecConfig(mode='mlp', exec_len=2, on_reject='defer'),
                     ex.corrector, fallback_planner=CHEAP)
  d = evaluation.run_episode(ex_d, xp, toy.FakeEnv(OBS, 1), jax.random.PRNGKey(0), 0, 0.0,
                             evaluation.Runtime(plan_ahead=True, ahead_lead=lead))
  assert (d['planner_calls'], d['deferred'], d['adopted']) == (1, 6, 0)
  assert (d['ahead_calls'], d['ready_offered']) == ({1: 6, 2: 7}[lead], 5)
  assert (d['end_offered'], d['end_adopted']) == (0, 0)     # all five were rescue plans
  # A non-finite observation (t = 1, exec_len 3 = the horizon): the step leaves index 3, which
  # for lead 1 is the dispatch index; no plan is made from the NaN latent. Then t = 2 replans
  # and the queue's dispatch follows (lead 1: after t = 4; lead 2: after t = 3 and t = 6).
  ex3 = sp.Executor(ex.model, PC, sp.SpecConfig(mode='mlp', exec_len=3), ex.corrector)
  obs = OBS.copy()
  obs[1] = np.nan
  n = evaluation.run_episode(ex3, xp, toy.FakeEnv(obs, 1), jax.random.PRNGKey(0), 0, 1e9,
                             evaluation.Runtime(plan_ahead=True, ahead_lead=lead))
  assert n['nonfinite_steps'] == [1] and n['planner_calls'] == 2
  assert n['ahead_calls'] == {1: 1, 2: 2}[lead]
  # lead 1: one queue end reached (t = 5, adopted); lead 2: t = 5 only (the NaN step came first).
  assert (n['end_offered'], n['end_adopted']) == (1, 1)
  # A NaN exactly at a queue end (exec_len 2, t = 2): that offer never reached the gate and is
  # not counted; t = 3 replans and the next queue end (t = 5) is offered and adopted.
  obs = OBS.copy()
  obs[2] = np.nan
  m = evaluation.run_episode(ex, xp, toy.FakeEnv(obs, 1), jax.random.PRNGKey(0), 0, 1e9,
                             evaluation.Runtime(plan_ahead=True, ahead_lead=lead))
  assert m['nonfinite_steps'] == [2]
  assert (m['end_offered'], m['end_adopted'], m['ready_offered']) == (1, 1, 1)


def test_late_plan_ahead_config_checked_and_labelled():
  ex = sp.Executor(toy.ToyModel(), PC, sp.SpecConfig(mode='spec', exec_len=2))
  env = toy.FakeEnv(np.zeros((2, 3)), 3)
  with pytest.raises(ValueError, match='plan_ahead'):
    evaluation.run_episode(ex, XP, env, jax.random.PRNGKey(0), 0, 0.5,
                           evaluation.Runtime(ahead_lead=1))
  with pytest.raises(ValueError, match='ahead_lead'):
    evaluation.run_episode(ex, XP, env, jax.random.PRNGKey(0), 0, 0.5,
                           evaluation.Runtime(plan_ahead=True, ahead_lead=3))
  block = dict(modes=('spec',), exec_lens=(2, 3), taus=(0.5,), plan_ahead=True, ahead_lead=3)
  with pytest.raises(ValueError, match='ahead_lead'):
    evaluation.grid([block], None)
  with pytest.raises(ValueError, match='ahead_lead'):
    evaluation.grid([dict(block, plan_ahead=False, ahead_lead=1)], None)
  with pytest.raises(ValueError, match='integer'):
    evaluation.run_episode(ex, XP, env, jax.random.PRNGKey(0), 0, 0.5,
                           evaluation.Runtime(plan_ahead=True, ahead_lead=1.5))
  pts = evaluation.grid([dict(block, ahead_lead=1), dict(block, ahead_lead=0)], None)
  assert [p.ahead_lead for p in pts] == [0, 1, 1, 0, 0]
  assert evaluation.label(ex, evaluation.Runtime(plan_ahead=True, ahead_lead=1)) == (
      'spec+ahead(L1) H=2')
  assert evaluation.label(ex, evaluation.Runtime(plan_ahead=True)) == 'spec+ahead H=2'


def test_late_plan_ahead_rows_stay_apart_when_combined(tmp_path):
  wm, params = toy.small_agent()
  obs = np.sin(np.arange(35.0)).reshape(7, 5)
  rows = evaluation.evaluate_grid(
      wm, params, PC, PC, {}, toy.FakeEnv(obs, 1),
      evaluation.grid([dict(modes=('spec',), exec_lens=(2,), taus=(1e9,), plan_ahead=True,
                            ahead_lead=lead) for lead in (0, 1)], None), 1,
      jax.random.PRNGKey(0), 0)
  assert [r['ahead_lead'] for r in rows] == [0, 0, 1]
  evaluation.write_outputs(rows, str(tmp_path / 'a'))
  merged, _ = evaluation.combine([str(tmp_path / 'a' / 'evaluation.csv')], str(tmp_path / 'b'), 3)
  assert [(r['mode'], r['ahead_lead']) for r in merged] == [('baseline', 0), ('spec', 0),
                                                            ('spec', 1)]


class _CacheAtReset(toy.FakeEnv):
  """Records the compiled variants of the step and the late plan when an episode starts."""

  def reset(self, seed=None):
    self.at_reset = sp.step._cache_size(), sp.plan_ahead_late._cache_size()
    return super().reset(seed)


@pytest.mark.slow   # (session 17, test time) test_plan_ahead.py has the default twin
def test_late_plan_ahead_is_compiled_before_the_timed_episode_and_only_once():
  wm, params = toy.small_agent()
  # A planner config no other test uses: jit caches are per process and keyed on the executor.
  pc = config.PlannerConfig(horizon=3, iterations=1, num_samples=20, num_elites=3, num_pi_trajs=3)
  ex = sp.Executor(wm, pc, sp.SpecConfig(mode='spec', exec_len=2))
  env = _CacheAtReset(np.sin(np.arange(35.0)).reshape(7, 5), 1)
  before = sp.step._cache_size(), sp.plan_ahead_late._cache_size()
  row = evaluation.evaluate_mode(ex, sp.ExecParams(params), env, 1e9, 1, jax.random.PRNGKey(0),
                                 runtime=evaluation.Runtime(plan_ahead=True, ahead_lead=1))
  assert row['adopted'] == 3 and row['ahead_lead'] == 1
  after = sp.step._cache_size(), sp.plan_ahead_late._cache_size()
  assert env.at_reset == after == (before[0] + 1, before[1] + 1)


def test_decision_path_holds_only_the_step_and_ready_plans_are_moved_at_dispatch(monkeypatch):
  # What is timed as decision latency (from the clock read at the observation to the action)
  # may hold the step alone: the key split and the copy of a plan made ahead to the step
  # device belong to the idle time after the previous action (the copy is dispatched with the
  # plan and completes when it does). Pipelined E = 1 / lead 1, tau 1e9: a ready plan at each
  # of steps 1..6.
  ex, xp = _mlp_agent(exec_len=1)
  events, offered = [], []
  moved = []    # kept alive, so the identity check below cannot hit a reused id
  real_put, real_step, real_split = evaluation._committed, sp.step, jax.random.split

  def put(x):
    events.append('put')
    moved.append(real_put(x))
    return moved[-1]

  def step(ex_, params, state, obs, key, tau, t0, ready, task=None):
    events.append('step')
    assert any(ready is m for m in moved)   # what the step is offered went through the copy
    offered.append(bool(ready.valid))
    return real_step(ex_, params, state, obs, key, tau, t0, ready, task=task)

  def split(*a, **k):
    events.append('split')
    return real_split(*a, **k)

  def clock():
    events.append('clock')
    return time.perf_counter()

  monkeypatch.setattr(evaluation, '_committed', put)
  monkeypatch.setattr(sp, 'step', step)
  monkeypatch.setattr(jax.random, 'split', split)
  monkeypatch.setattr(evaluation, 'time', types.SimpleNamespace(perf_counter=clock,
                                                                 sleep=time.sleep))
  out = evaluation.run_episode(ex, xp, toy.FakeEnv(OBS, 1), jax.random.PRNGKey(0), 0, 1e9,
                               evaluation.Runtime(plan_ahead=True, ahead_lead=1))
  assert out['adopted'] == 6 and offered == [False] + [True] * 6
  starts = [i for i, e in enumerate(events) if e == 'step']
  assert len(starts) == 7
  for i in starts:
    last_clock = max(j for j in range(i) if events[j] == 'clock')
    assert events[last_clock + 1:i] == [], events[last_clock:i + 1]


def test_plans_made_ahead_reach_the_step_on_the_step_device_with_three_devices():
  # Step, plan-ahead and rescue devices apart (as launch/evaluate.py runs on a CPU): every
  # offered plan is on the step device, the timed episode compiles no step variant, and the
  # actions equal this (one-device) process's.
  res = toy.run_device_script('plan_ahead_devices.py', 3)
  assert res['n'] == 3
  assert len(res['seen']) == 3 + 5 and all(s == [0] for s in res['seen'])  # 3 adopted, 5 rescue
  for tau, (adopted, deferred) in ((1e9, (3, 0)), (0.0, (0, 6))):
    r = res[str(tau)]
    assert (r['adopted'], r['deferred']) == (adopted, deferred)
    assert r['after'] == r['at_reset']            # nothing compiled inside the episode
    ex, xp = _mlp_agent(on_reject='defer')
    env1 = toy.FakeEnv(OBS, 1)
    evaluation.evaluate_mode(ex, xp, env1, tau, 1, jax.random.PRNGKey(0),
                             runtime=evaluation.Runtime(plan_ahead=True, ahead_lead=1))
    np.testing.assert_allclose(r['actions'], np.stack(env1.actions), atol=1e-5)
