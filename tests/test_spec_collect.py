"""Speculative batched collection during training (issue 11.2): the trainer's traced-backend
collection with ``collect_exec_len`` > 1 plans only the environments that replan
(``speculation.step_batch_compact``). In-JAX fake environment: the simulator adds nothing."""
import csv
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import builders
from spec_jax import config
from spec_jax import envs
from spec_jax import planner
from spec_jax import speculation as sp
from spec_jax import trainer
import toy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PC = config.PlannerConfig(horizon=3, iterations=2, num_samples=16, num_elites=3, num_pi_trajs=3)
B, STEPS = 3, 8


def _collect(ex, tau, episode_length):
  wm, params = toy.small_agent()
  env = toy.FakeJaxEnv(episode_length=episode_length)
  env_state = trainer.batch.reset(env, jax.random.PRNGKey(3), B)
  if ex is None:
    policy_state = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (B,) + x.shape),
                                          planner.init_state(PC, 1))
  else:
    policy_state = sp.batch_state(sp.init_state(ex), B)
  ids = jnp.ones((B,), jnp.int32)
  key = jax.random.PRNGKey(11)
  (_, state, _), recs = trainer._mjx_collect(env, wm, PC, params, env_state, policy_state, ids,
                                             key, STEPS, False, ex, jnp.float32(tau))
  return wm, params, env_state, key, state, recs


def _spec_executor(exec_len=3):
  """The trainer's collection executor (exploration noise on, as plan_batch in training)."""
  wm, _ = toy.small_agent()
  return trainer.collect_executor(wm, PC, builders.RunConfig(collect_exec_len=exec_len))


def test_speculative_collection_with_tau_zero_equals_planning_every_step():
  # tau = 0 rejects every queued action: every env replans every step, with the same per-env
  # keys and warm start (shift 1) as plan_batch, so the data must be the same.
  *_, plain = _collect(None, 0.0, episode_length=4)
  *_, spec = _collect(_spec_executor(), 0.0, episode_length=4)
  np.testing.assert_allclose(spec['action'], plain['action'], atol=1e-5)
  np.testing.assert_allclose(spec['obs'], plain['obs'], atol=1e-5)
  np.testing.assert_array_equal(spec['episode'], plain['episode'])
  assert bool(np.all(plain['planned'])) and bool(np.all(spec['planned']))


def test_speculative_collection_plans_at_queue_ends_and_episode_starts():
  # No gate (tau = inf), E = 3, episodes of 4 steps (auto-reset after step 3): plans at t = 0,
  # at the queue end t = 3, and at the next episode's start (step 4), then step 7.
  ex = _spec_executor()
  wm, params, env_state, key, state, recs = _collect(ex, jnp.inf, episode_length=4)
  want = np.array([1, 0, 0, 1, 1, 0, 0, 1], bool)
  np.testing.assert_array_equal(np.asarray(recs['planned']), np.repeat(want[:, None], B, 1))
  assert int(state.planner_calls.sum()) == B * int(want.sum())
  # Steps 1 and 2 execute the queued actions of the step-0 plan (no correction, no noise).
  step_key = jax.random.split(key, STEPS)[0]
  for i, k in enumerate(jax.random.split(step_key, B)):
    res, _ = planner.plan(wm, params, PC, planner.init_state(PC, 1), env_state.obs[i], k, True,
                          False, shift=3)
    np.testing.assert_allclose(recs['action'][0, i], res.action, atol=1e-5)
    np.testing.assert_allclose(recs['action'][1:3, i], res.actions[1:3], atol=1e-5)
    # The recorded mismatch: 0 at the episode start, then ||enc(obs_k) - latents[k]||.
    d = [float(jnp.linalg.norm(wm.encode(params, recs['obs'][k, i]) - res.latents[k]))
         for k in (1, 2)]
    np.testing.assert_allclose(recs['mismatch'][:3, i], [0.0] + d, rtol=1e-4, atol=1e-6)
    assert min(d) > 0


def test_collection_records_no_plans_in_the_random_phase():
  wm, params = toy.small_agent()
  env = toy.FakeJaxEnv(episode_length=4)
  ex = _spec_executor()
  (_, state, _), recs = trainer._mjx_collect(
      env, wm, PC, params, trainer.batch.reset(env, jax.random.PRNGKey(0), B),
      sp.batch_state(sp.init_state(ex), B), jnp.ones((B,), jnp.int32), jax.random.PRNGKey(1),
      4, True, ex, jnp.float32(jnp.inf))
  assert not bool(np.any(recs['planned'])) and int(state.planner_calls.sum()) == 0
  assert float(np.max(np.abs(recs['action']))) <= 1.0


@pytest.fixture
def fake_traced(monkeypatch):
  monkeypatch.setattr(envs, 'REGISTRY', dict(envs.REGISTRY))
  envs.register('fake-traced', lambda task, **kw: toy.FakeJaxEnv(
      episode_length=kw['episode_length']), traced=True)


def _tiny(**overrides):
  cfg = builders.load_module(os.path.join(ROOT, 'experiments', 'tiny.py')).get_config()
  cfg.update(overrides)
  return cfg


def test_collection_settings_are_checked(fake_traced):
  for bad in (0, -2):   # (the ConfigDict itself refuses non-integers)
    with pytest.raises(ValueError, match='collect_exec_len must be an integer'):
      builders.run_config(_tiny(backend='fake-traced', num_envs=4, collect_exec_len=bad))
  for bad in (-0.1, float('nan')):
    with pytest.raises(ValueError, match='collect_tau'):
      builders.run_config(_tiny(backend='fake-traced', num_envs=4, collect_exec_len=2,
                                collect_tau=bad))
  with pytest.raises(ValueError, match='needs a batched traced backend'):
    builders.run_config(_tiny(collect_exec_len=2))                     # dm_control host loop
  rc = builders.run_config(_tiny(backend='fake-traced', num_envs=4, collect_exec_len=3,
                                 collect_tau=0.5))
  assert (rc.collect_exec_len, rc.collect_tau) == (3, 0.5)
  assert trainer.collect_executor(None, PC, builders.run_config(_tiny())) is None
  with pytest.raises(ValueError, match='no effect with collect_exec_len 1'):
    builders.run_config(_tiny(backend='fake-traced', num_envs=4, collect_tau=0.5))


@pytest.mark.parametrize('tau, want', [(float('inf'), [0.0, 0.5, 0.25, 0.5]),
                                       (0.0, [0.0, 1.0, 1.0, 1.0])])
def test_training_collects_speculatively_and_reports_the_plan_fraction(fake_traced, tmp_path,
                                                                       tau, want):
  # 4 envs, episodes of 6 steps, chunks of 4 vector steps, E = 3; chunk 1 is the random phase.
  # No gate: plans at global steps 4 (queue empty), 6 (episode start), 9 (queue end), 12
  # (episode start), 15 (queue end): the SpecState carries across chunks (8 and 12 do not start
  # a new queue), so the chunks plan 2/4, 1/4 and 2/4 of their agent steps. tau = 0 (from the
  # config): every step replans.
  cfg = _tiny(backend='fake-traced', num_envs=4, chunk_steps=4, episode_length=6, steps=64,
              seed_steps=16, updates_per_step=0.25, update_chunk=4, eval_every=0,
              checkpoint_every=64, collect_exec_len=3, collect_tau=tau)
  result = trainer.train(cfg, str(tmp_path))
  assert result['agent_step'] == 64 and not result['interrupted']
  with open(os.path.join(str(tmp_path), 'metrics.csv')) as f:
    fracs = [float(r['collect_plan_frac']) for r in csv.DictReader(f)]
  assert fracs == pytest.approx(want)


def test_resumed_speculative_run_starts_fresh_episodes_and_queues(fake_traced, tmp_path):
  # The run above, stopped after 32 agent steps (vector step 8) and resumed to 64. A resumed
  # run starts fresh episodes and an empty queue at vector step 8, so its plans fall at 8
  # (episode start), 11 (queue end) and 14 (next episode start): chunk fractions 2/4 and 1/4,
  # where the uninterrupted run (above) logs 1/4 and 2/4. The checkpoint carries the counters.
  kw = dict(backend='fake-traced', num_envs=4, chunk_steps=4, episode_length=6,
            seed_steps=16, updates_per_step=0.25, update_chunk=4, eval_every=0,
            checkpoint_every=16, collect_exec_len=3)
  first = trainer.train(_tiny(steps=32, **kw), str(tmp_path))
  assert first['agent_step'] == 32 and not first['resumed']
  second = trainer.train(_tiny(steps=64, **kw), str(tmp_path))
  assert second['resumed'] and second['agent_step'] == 64 and not second['interrupted']
  with open(os.path.join(str(tmp_path), 'metrics.csv')) as f:
    rows = list(csv.DictReader(f))
  assert [int(r['agent_step']) for r in rows] == [16, 32, 48, 64]
  assert [float(r['collect_plan_frac']) for r in rows] == pytest.approx([0.0, 0.5, 0.5, 0.25])


def test_collection_longer_than_the_planner_horizon_fails_before_any_checkpoint(fake_traced,
                                                                                 tmp_path):
  cfg = _tiny(backend='fake-traced', num_envs=4, episode_length=6, collect_exec_len=4)
  with pytest.raises(ValueError, match=r'collect_exec_len \(4\) cannot exceed the planner horizon'):
    trainer.train(cfg, str(tmp_path))
  assert not os.path.exists(os.path.join(str(tmp_path), 'checkpoints'))


def test_one_traced_environment_trains_past_the_seed_phase(fake_traced, tmp_path):
  # A traced-only backend runs the batched loop even with num_envs = 1 (RunConfig.batched);
  # its planner state must carry the env axis (session 17: plan_batch failed at the first
  # planned chunk, "vmap got inconsistent sizes").
  cfg = _tiny(backend='fake-traced', num_envs=1, chunk_steps=4, episode_length=6, steps=12,
              seed_steps=4, updates_per_step=0.25, update_chunk=4, eval_every=0,
              checkpoint_every=12)
  assert builders.run_config(cfg).batched
  result = trainer.train(cfg, str(tmp_path))
  assert result['agent_step'] == 12 and not result['interrupted']
  with open(os.path.join(str(tmp_path), 'metrics.csv')) as f:
    assert [float(r['collect_plan_frac']) for r in csv.DictReader(f)] == [0.0, 1.0, 1.0]
