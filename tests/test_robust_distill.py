"""Robust distillation: DAgger rollouts execute the corrected action, per-episode randomised
physics, merged datasets keep episode ids unique."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import config
from spec_jax import correctors
from spec_jax import distill
from spec_jax import speculation as sp
import toy

PC = config.PlannerConfig(horizon=3, iterations=2, num_samples=32, num_elites=4, num_pi_trajs=4)
OBS = np.sin(np.arange(30.0)).reshape(6, 5)


def _collect(corrector=None, first=0, env_for=None):
  wm, params = toy.small_agent()
  env = toy.FakeEnv(OBS, 1)
  data, _ = distill.collect(wm, params, PC, env, 1, jax.random.PRNGKey(0), history=4,
                            teacher_prob=0.0, corrector=corrector, first_episode=first,
                            env_for_episode=env_for)
  return data, np.stack(env.actions) if env_for is None else None


@pytest.mark.slow
def test_dagger_rollout_executes_the_corrected_action_and_records_the_uncorrected_one():
  cor = correctors.Corrector(correctors.CorrectorConfig('mlp', hidden=16), 32, 1)
  cp = jax.tree_util.tree_map(lambda x: x + 0.2, cor.init(jax.random.PRNGKey(1)))
  plain, acts_plain = _collect()
  dag, acts_dag = _collect((cor, cp), first=7)
  # Same plan at t0; at the first speculative step (t = 1) the data hold the same queued
  # action, but the DAgger rollout executed the corrected one.
  np.testing.assert_allclose(acts_dag[0], acts_plain[0], atol=1e-6)
  np.testing.assert_allclose(dag.a_spec[0], plain.a_spec[0], atol=1e-6)
  np.testing.assert_allclose(acts_plain[1], plain.a_spec[0], atol=1e-6)
  want = cor.correct(cp, dag.history[0], dag.valid[0], dag.a_spec[0])
  np.testing.assert_allclose(acts_dag[1], want, atol=1e-5)
  assert not np.allclose(acts_dag[1], acts_plain[1], atol=1e-3)
  assert set(np.asarray(dag.episode).tolist()) == {7}
  merged = distill.merge(plain, dag)
  assert merged.d.shape[0] == plain.d.shape[0] + dag.d.shape[0]
  with pytest.raises(ValueError, match='episode ids'):
    distill.merge(plain, plain)


def test_randomised_scales_per_episode():
  a = distill.randomised_scales({'mass': (0.7, 1.3), 'friction': (0.5, 0.5)}, 0, 3)
  assert a == distill.randomised_scales({'mass': (0.7, 1.3), 'friction': (0.5, 0.5)}, 0, 3)
  assert 0.7 <= a['mass'] <= 1.3 and a['friction'] == 0.5
  assert a != distill.randomised_scales({'mass': (0.7, 1.3), 'friction': (0.5, 0.5)}, 0, 4)
  with pytest.raises(ValueError, match='0 < lo <= hi'):
    distill.randomised_scales({'mass': (1.3, 0.7)}, 0, 0)
  seen = []
  _collect(env_for=lambda ep: seen.append(ep) or toy.FakeEnv(OBS, 1), first=5)
  assert seen == [5]


def test_saved_dataset_round_trip_and_damaged_file(tmp_path):
  data, _ = _collect()
  path = str(tmp_path / 'dataset.npz')
  np.savez_compressed(path, **{k: np.asarray(v) for k, v in data._asdict().items()})
  back = distill.load_dataset(path)
  for a, b in zip(data, back):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  np.savez(str(tmp_path / 'bad.npz'), d=np.zeros(3))
  with pytest.raises(ValueError, match='missing'):
    distill.load_dataset(str(tmp_path / 'bad.npz'))


def test_randomised_episodes_have_their_own_scales_and_initial_state_seed():
  calls = []
  make = lambda **kw: calls.append(kw) or len(calls)
  env_for = distill.episode_envs(make, {'mass': (0.7, 1.3)}, 5)
  env_for(0), env_for(1), env_for(0)
  assert [c['seed'] for c in calls] == [6, 7, 6]
  assert calls[0]['model_scale'] == distill.randomised_scales({'mass': (0.7, 1.3)}, 5, 0)
  assert calls[0]['model_scale'] != calls[1]['model_scale'] and calls[0] == calls[2]
  assert distill.episode_envs(make, {}, 5) is None


def test_pipelined_collection_speculates_from_the_one_step_prediction_of_the_executed_action():
  # Toy model: identity encoder, z' = z + 0.5 a. teacher_prob 1: every step after t0 executes
  # the teacher's action, so the next step's speculative plan must be seeded at
  # obs[t-1] + 0.5 * (the EXECUTED action), and every tuple is a k = 0 adoption.
  obs = np.stack([np.sin(np.arange(3.0) + t) for t in range(6)]).astype(np.float32)
  env = toy.FakeEnv(obs, 3)
  data, stats = distill.collect(toy.ToyModel(), toy.TOY_PARAMS, PC, env, 1,
                                jax.random.PRNGKey(0), history=2, teacher_prob=1.0,
                                pipelined=True)
  acts = np.stack(env.actions)
  assert stats['tuples'] == 5 and np.all(np.asarray(data.k) == 0)
  np.testing.assert_allclose(data.z_hat, obs[:5] + 0.5 * acts[:5], atol=1e-6)
  np.testing.assert_allclose(data.a_teacher, acts[1:], atol=1e-6)
  np.testing.assert_allclose(data.d, np.linalg.norm(obs[1:] - data.z_hat, axis=1), atol=1e-5)
  # The speculative action is a plan for the predicted latent, not the teacher's for the real.
  assert not np.allclose(data.a_spec, data.a_teacher, atol=1e-3)
  # ... namely the first action of plan_ahead_late(lead=1) from the step's own state, real
  # latent and executed action, with the collection's key schedule, written out here.
  ex = sp.Executor(toy.ToyModel(), PC, sp.SpecConfig(mode='spec', exec_len=1, history=2))
  xp, ready, key, want = sp.ExecParams(toy.TOY_PARAMS), None, jax.random.PRNGKey(0), []
  state = sp.init_state(ex)
  for t in range(6):
    key, step_key = jax.random.split(key)
    spec_key = jax.random.split(step_key, 3)[0]
    _, state, info = sp.step(ex, xp, state, jnp.asarray(obs[t]), spec_key, jnp.inf, t == 0, ready)
    if t:
      want.append(np.asarray(info.a_spec))
    ready = sp.plan_ahead_late(ex, xp, state, info.z_real, jnp.asarray(acts[t]),
                               jax.random.fold_in(step_key, 1), lead=1)
  np.testing.assert_allclose(data.a_spec, np.stack(want), atol=1e-6)
