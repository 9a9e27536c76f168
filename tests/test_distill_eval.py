"""Distillation data, corrector training, exports with correctors, evaluation outputs."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import checkpoint
from spec_jax import config
from spec_jax import correctors
from spec_jax import distill
from spec_jax import evaluation
from spec_jax import reporting
from spec_jax import planner
from spec_jax import speculation as sp
from spec_jax import world_model
from spec_jax.envs import dmc
import toy

PC = config.PlannerConfig(horizon=3, iterations=2, num_samples=32, num_elites=4, num_pi_trajs=4)


@pytest.fixture(scope='module')
def agent():
  return toy.small_agent()


@pytest.fixture(scope='module')
def data(agent):
  wm, params = agent
  env = dmc.DMCEnv('cartpole-swingup', episode_length=30)
  return distill.collect(wm, params, PC, env, 2, jax.random.PRNGKey(0), teacher_prob=0.5)


def test_collect_covers_every_speculation_depth(data):
  ds, stats = data
  # 30 steps = 10 plans x 2 speculative steps, for 2 episodes.
  assert stats['tuples'] == 40 and ds.d.shape == (40,)
  assert set(np.asarray(ds.k).tolist()) == {1, 2}
  np.testing.assert_allclose(ds.d, jnp.linalg.norm(ds.z_real - ds.z_hat, axis=-1), rtol=1e-5)
  # The newest history token is this step's mismatch feature.
  np.testing.assert_allclose(ds.history[:, -1, :32], ds.z_real, atol=1e-6)
  np.testing.assert_allclose(ds.history[:, -1, -1:], ds.a_spec, atol=1e-6)
  assert bool(jnp.all(jnp.abs(ds.a_teacher) <= 1))


def test_split_is_by_episode(data):
  ds, _ = data
  assert set(np.asarray(ds.episode).tolist()) == {0, 1}
  train, test = distill.split(ds, 0.25, jax.random.PRNGKey(0))
  # 2 episodes: one held out whole (20 tuples each), none shared between the sides.
  assert train.d.shape[0] == 20 and test.d.shape[0] == 20
  assert not set(np.asarray(train.episode).tolist()) & set(np.asarray(test.episode).tolist())
  both = np.concatenate([np.asarray(train.d), np.asarray(test.d)])
  np.testing.assert_allclose(np.sort(both), np.sort(np.asarray(ds.d)))
  with pytest.raises(ValueError):
    distill.split(ds, 1.5, jax.random.PRNGKey(0))
  one_episode = jax.tree_util.tree_map(lambda x: x[:20], ds)
  with pytest.raises(ValueError, match='2 episodes'):
    distill.split(one_episode, 0.5, jax.random.PRNGKey(0))


def _tracking_data(episodes=2, T=12):
  # Toy model whose best action is clip(z) (static latent dynamics); observations alternate in
  # sign, so the action planned for an earlier observation (a_spec) is far from the best
  # action at the current one, which the replanning teacher finds.
  model = toy.ToyModel(drift=0.0, track=True)
  pc = config.PlannerConfig(horizon=3, iterations=6, num_samples=256, num_elites=16,
                            num_pi_trajs=0, temperature=5.0, discount=1.0)
  base = np.array([0.6, -0.5, 0.4])
  env = toy.FakeEnv([base * (-1) ** t for t in range(T)], action_dim=3)
  return model, distill.collect(model, toy.TOY_PARAMS, pc, env, episodes, jax.random.PRNGKey(0),
                                teacher_prob=0.0)


def test_target_is_the_teachers_action_at_the_same_observation():
  _, (ds, _) = _tracking_data()
  best_now = np.clip(np.asarray(ds.z_real), -1, 1)
  teacher_err = np.abs(np.asarray(ds.a_teacher) - best_now).max(axis=1)
  spec_err = np.abs(np.asarray(ds.a_spec) - best_now).max(axis=1)
  assert np.median(teacher_err) < 0.2         # the teacher replans at THIS observation
  assert np.median(spec_err) > 0.6            # the queued action was planned for another one
  # Every tuple's teacher action is the best action for its own observation, not a neighbour's.
  np.testing.assert_array_less(np.median(teacher_err), np.median(spec_err))


def test_corrector_beats_uncorrected_on_heldout_episodes():
  # The correction a_teacher - a_spec is a simple function of (z_real, z_hat); trained on some
  # episodes, the corrector must reduce the error on held-out EPISODES well below a_spec's.
  _, (ds, _) = _tracking_data(episodes=6, T=15)
  corr = correctors.Corrector(correctors.CorrectorConfig('mlp', hidden=64), 3, 3)
  _, metrics = distill.train(corr, ds, jax.random.PRNGKey(0), steps=1500, batch_size=32,
                             holdout=0.34, epoch=500, lam=0.0, lr=3e-3)
  assert metrics['mse_corrected'] < 0.25 * metrics['mse_uncorrected'], metrics


def test_loss_hand_value(agent):
  corr = correctors.Corrector(correctors.CorrectorConfig('mlp', hidden=8), 32, 1)
  params = corr.init(jax.random.PRNGKey(0))  # zero output: a_corr = a_spec
  batch = distill.Dataset(z_real=jnp.zeros((2, 32)), z_hat=jnp.zeros((2, 32)),
                          a_spec=jnp.array([[0.5], [-0.2]]), a_teacher=jnp.array([[0.1], [0.2]]),
                          d=jnp.zeros(2), history=jnp.zeros((2, 4, 97)), valid=jnp.ones((2, 4), bool),
                          k=jnp.ones(2, jnp.int32), episode=jnp.zeros(2, jnp.int32))
  loss, mse = distill.loss_fn(params, corr, batch, 0.1)
  np.testing.assert_allclose(mse, (0.4 ** 2 + 0.4 ** 2) / 2, rtol=1e-6)
  np.testing.assert_allclose(loss, mse, rtol=1e-6)  # regulariser is 0 when a_corr = a_spec


@pytest.mark.parametrize('kind', ['mlp', pytest.param('transformer', marks=pytest.mark.slow)])
def test_training_reduces_train_loss(data, kind):
  ds, _ = data
  corr = correctors.Corrector(correctors.CorrectorConfig(kind, hidden=64), 32, 1)
  _, metrics = distill.train(corr, ds, jax.random.PRNGKey(0), steps=300, batch_size=16,
                             holdout=0.25, epoch=150, lam=0.0)
  assert metrics['train_mse'] < metrics['curve'][0]['train_mse'] + 1e-9
  assert metrics['test_size'] == 20
  assert np.isfinite(metrics['mse_corrected'])


def test_keep_best_returns_the_epoch_with_the_lowest_held_out_error(data, monkeypatch):
  # Scripted epochs: epoch e adds 1 to every parameter, held-out errors 3, 2, 1, 2.5, 4; the
  # best epoch is the third (step 300), neither the first nor the last.
  ds, _ = data
  corr = correctors.Corrector(correctors.CorrectorConfig('mlp', hidden=16), 32, 1)
  plus_one = lambda tree: jax.tree_util.tree_map(lambda x: x + 1.0, tree)
  monkeypatch.setattr(distill, '_train_epoch',
                      lambda c, params, opt, *a: (plus_one(params), opt, 0.0, 0.0))

  def run(keep_best, errors=(3.0, 2.0, 1.0, 2.5, 4.0)):
    held = iter(errors)
    monkeypatch.setattr(distill, 'evaluate',
                        lambda c, p, d: dict(mse_corrected=next(held), mse_uncorrected=9.0))
    return distill.train(corr, ds, jax.random.PRNGKey(0), steps=500, holdout=0.5, epoch=100,
                         keep_best=keep_best)

  init = corr.init(jax.random.split(jax.random.PRNGKey(0), 3)[1])   # train's init key
  for keep_best, epochs in ((True, 3), (False, 5)):
    params, metrics = run(keep_best)
    assert (metrics['step'], len(metrics['curve'])) == (100 * epochs, 5)
    assert metrics['mse_corrected'] == {3: 1.0, 5: 4.0}[epochs]
    jax.tree_util.tree_map(lambda p, q: np.testing.assert_allclose(p, q + epochs, rtol=1e-6),
                           params, init)
  # A non-finite first epoch is never kept as the best.
  _, metrics = run(True, (float('nan'), 2.0, 1.0, 2.5, 4.0))
  assert metrics['step'] == 300


def test_export_with_correctors_round_trip_identical_actions(agent, tmp_path):
  wm, params = agent
  corr = correctors.Corrector(correctors.CorrectorConfig('transformer'), 32, 1)
  cparams = jax.tree_util.tree_map(lambda x: x + 0.01, corr.init(jax.random.PRNGKey(1)))
  out = checkpoint.export_with_correctors(str(tmp_path / 'exp'), wm, params, PC,
                                          {'transformer': (corr, cparams)}, extra={'task': 't'})
  wm2, params2, pc2, cors, meta = checkpoint.load_with_correctors(out)
  assert wm2 == wm and pc2 == PC and meta['extra']['task'] == 't'
  corr2, cparams2 = cors['transformer']
  assert corr2 == corr
  cfg = sp.SpecConfig(mode='transformer')

  def actions(m, p, c, cp):
    ex = sp.Executor(m, PC, cfg, c)
    state, out = sp.init_state(ex), []
    for t in range(5):
      a, state, _ = sp.step(ex, sp.ExecParams(p, cp), state, jnp.sin(jnp.arange(5.0) + 0.1 * t),
                            jax.random.PRNGKey(t), 1e9, t == 0)
      out.append(np.asarray(a))
    return np.stack(out)

  np.testing.assert_array_equal(actions(wm, params, corr, cparams),
                                actions(wm2, params2, corr2, cparams2))


def test_partial_or_mismatched_export_errors(agent, tmp_path):
  wm, params = agent
  out = checkpoint.export_agent(str(tmp_path / 'e'), wm.cfg, params, PC)
  # Metadata claims another latent size than the stored parameters.
  import json
  meta_path = os.path.join(out, 'metadata.json')
  meta = json.load(open(meta_path))
  meta['model']['latent_dim'] = 64
  json.dump(meta, open(meta_path, 'w'))
  with pytest.raises(checkpoint.CheckpointError, match='differ'):
    checkpoint.load_agent(out)
  meta['version'] = 99
  json.dump(meta, open(meta_path, 'w'))
  with pytest.raises(checkpoint.CheckpointError, match='version'):
    checkpoint.load_agent(out)


def test_evaluate_mode_and_outputs(agent, tmp_path):
  wm, params = agent
  env = dmc.DMCEnv('cartpole-swingup', episode_length=12)
  rows = []
  for mode in ('baseline', 'spec'):
    rows.append(evaluation.evaluate_mode(sp.Executor(wm, PC, sp.SpecConfig(mode=mode)),
                                         sp.ExecParams(params), env, 1e9, 2,
                                         jax.random.PRNGKey(0)))
  assert rows[0]['planner_calls'] == 12 and rows[0]['corrections'] == 0
  assert rows[1]['planner_calls'] == 4 and rows[1]['corrections'] == 8
  assert rows[1]['correct_ms_median'] > 0 and rows[1]['replan_ms_median'] > 0
  paths = evaluation.write_outputs(rows, str(tmp_path))
  assert 'baseline' in open(paths['md']).read()
  assert os.path.getsize(paths['png']) > 1000


def test_damaged_metadata_raises_checkpoint_error_naming_the_file(agent, tmp_path):
  wm, params = agent
  out = checkpoint.export_agent(str(tmp_path / 'e'), wm.cfg, params, PC)
  with open(os.path.join(out, 'metadata.json'), 'w') as f:
    f.write('{"format": "spec_jax.agent", "vers')
  with pytest.raises(checkpoint.CheckpointError, match='metadata.json is damaged'):
    checkpoint.load_agent(out)


def test_export_written_on_another_device_loads_here(agent, tmp_path):
  # An export written on a GPU records its arrays' device (cuda:0) in params/_sharding; a
  # CPU-only machine must still load it (found with the H100 humanoid export).
  wm, params = agent
  out = checkpoint.export_agent(str(tmp_path / 'gpu'), wm.cfg, params, PC)
  sharding = os.path.join(out, 'params', '_sharding')
  text = open(sharding).read()
  assert 'cpu:0' in text
  with open(sharding, 'w') as f:
    f.write(text.replace('cpu:0', 'cuda:0'))
  _, loaded, _, _ = checkpoint.load_agent(out)
  for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(loaded)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_version_1_export_is_migrated(agent, tmp_path):
  import json
  wm, params = agent
  out = checkpoint.export_agent(str(tmp_path / 'v1'), wm.cfg, params, PC,
                                extra=dict(task='t', env_step=300, action_repeat=2))
  meta_path = os.path.join(out, 'metadata.json')
  meta = json.load(open(meta_path))
  meta['version'] = 1
  del meta['storage_dtype']
  json.dump(meta, open(meta_path, 'w'))
  _, _, _, loaded = checkpoint.load_agent(out)
  assert loaded['version'] == 2 and loaded['storage_dtype'] == 'float32'
  assert loaded['extra']['agent_step'] == 300 and loaded['extra']['env_step'] == 600


def test_float16_export_plans_like_float32(agent, tmp_path):
  # Shipped agents are stored in float16; the planner on the loaded (float32) parameters must
  # give the same actions as on the original ones within a stated tolerance (0.05 per action
  # dimension on this model, same keys; MPPI elite choice can amplify tiny weight changes).
  wm, params = agent
  corr = correctors.Corrector(correctors.CorrectorConfig('mlp', hidden=32), 32, 1)
  cparams = jax.tree_util.tree_map(lambda x: x + 0.01, corr.init(jax.random.PRNGKey(1)))
  out = checkpoint.export_with_correctors(str(tmp_path / 'h'), wm, params, PC,
                                          {'mlp': (corr, cparams)}, storage_dtype='float16')
  wm2, params2, _, cors, meta = checkpoint.load_with_correctors(out)
  assert meta['storage_dtype'] == 'float16'
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(params2))
  diffs = []
  for t in range(8):
    obs, key = jnp.sin(jnp.arange(5.0) * (t + 1)), jax.random.PRNGKey(t)
    a, _ = planner.plan(wm, params, PC, planner.init_state(PC, 1), obs, key, True, True)
    b, _ = planner.plan(wm2, params2, PC, planner.init_state(PC, 1), obs, key, True, True)
    diffs.append(float(jnp.max(jnp.abs(a.action - b.action))))
  assert np.median(diffs) < 0.05, diffs
  with pytest.raises(ValueError, match='storage_dtype'):
    checkpoint.export_agent(str(tmp_path / 'x'), wm.cfg, params, PC, storage_dtype='int8')


def test_distill_and_evaluate_jobs_end_to_end(agent, tmp_path):
  # The library jobs behind launch/distill.py and launch/evaluate.py on a small export:
  # planner horizon override, episode-wise holdout, stored mismatch quantiles, tau given as a
  # quantile, float16 storage, paired statistics in the outputs.
  import ml_collections
  wm, params = agent
  export = checkpoint.export_agent(str(tmp_path / 'agent'), wm.cfg, params, PC,
                                   extra=dict(task='cartpole-swingup', action_repeat=2,
                                              episode_length=12, agent_step=0, env_step=0))
  dcfg = ml_collections.ConfigDict(dict(
      seed=0, episodes=2, teacher_prob=0.5, history=4, kinds=('mlp',), hidden=16, steps=20,
      batch_size=8, lr=3e-4, lam=0.1, holdout=0.5, planner=dict(horizon=4),
      storage_dtype='float16'))
  report = distill.run(dcfg, export, str(tmp_path / 'distill'))
  assert report['kinds'] == ('mlp',) and report['planner']['horizon'] == 4
  _, _, pc2, cors, meta = checkpoint.load_with_correctors(str(tmp_path / 'distill' / 'export'))
  assert pc2.horizon == 4 and 'mlp' in cors and meta['storage_dtype'] == 'float16'
  assert len(meta['extra']['mismatch_quantiles']) == 101
  assert meta['extra']['distill']['pipelined'] is False
  # The saved open-loop rollouts cannot be reused as pipelined data (k >= 1 tuples).
  with pytest.raises(ValueError, match='open-loop tuples'):
    distill.run(ml_collections.ConfigDict(dict(dcfg, pipelined=True, dataset=str(
        tmp_path / 'distill' / 'dataset.npz'))), export, str(tmp_path / 'distill2'))
  ecfg = ml_collections.ConfigDict(dict(
      seed=100, episodes=2, episode_length=6,
      blocks=(dict(modes=('spec',), exec_lens=(4,), taus=(float('inf'),),
                   tau_quantiles=(0.5,)),),
      base_planner=dict(horizon=3), spec_planner=dict()))
  rows, paths = evaluation.run(ecfg, str(tmp_path / 'distill' / 'export'), str(tmp_path / 'ev'))
  assert [r['mode'] for r in rows] == ['baseline', 'spec', 'spec']
  assert rows[0]['horizon'] == 3 and rows[1]['horizon'] == 4
  assert rows[2]['tau_q'] == 0.5 and np.isfinite(rows[2]['tau'])
  assert rows[0]['planner_calls'] == 6 and rows[1]['planner_calls'] == 2   # open loop, H = 4
  text = open(paths['md']).read()
  assert 'return_median' in text and 'ratio_lo' in text
  # The episode seeds (seed, seed + 1, ...) are recorded with every row.
  assert [r['seeds'] for r in evaluation.read_rows(paths['csv'])] == [[100, 101]] * 3
  # Passes on the same seeds merge; per-seed returns survive the CSV round trip.
  merged, _ = evaluation.combine([paths['csv'], paths['csv']], str(tmp_path / 'm'), 3)
  assert [r['mode'] for r in merged] == [r['mode'] for r in rows]
  np.testing.assert_allclose(merged[1]['returns'], rows[1]['returns'], atol=0.06)
  with pytest.raises(ValueError, match='no baseline with horizon 4'):
    evaluation.combine([paths['csv']], str(tmp_path / 'm2'), 4)
  # A row that differs only in its fallback planner is a different point, not a duplicate.
  fb = evaluation.read_rows(paths['csv'])[1]
  fb['fallback_planner'] = 'iterations=1'
  fb['returns_per_seed'] = ' '.join(str(x) for x in fb['returns'])
  reporting.write_csv([fb], str(tmp_path / 'fb.csv'),
                      evaluation.COLUMNS + ('returns_per_seed',))
  merged, _ = evaluation.combine([paths['csv'], str(tmp_path / 'fb.csv')], str(tmp_path / 'm3'), 3)
  assert [r.get('fallback_planner') or '' for r in merged] == ['', '', '', 'iterations=1']
  # Labelled passes (other exports at the same points) keep their speculative rows apart.
  merged, _ = evaluation.combine([paths['csv'], paths['csv']], str(tmp_path / 'm4'), 3,
                                 labels=('', 'robust'))
  assert [r['mode'] for r in merged] == ['baseline', 'spec', 'spec', 'spec-robust', 'spec-robust']
  with pytest.raises(ValueError, match='1 labels for 2'):
    evaluation.combine([paths['csv'], paths['csv']], str(tmp_path / 'm5'), 3, labels=('x',))
