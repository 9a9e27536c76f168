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


def test_split_is_disjoint(data):
  ds, _ = data
  train, test = distill.split(ds, 0.25, jax.random.PRNGKey(0))
  assert train.d.shape[0] == 30 and test.d.shape[0] == 10
  both = np.concatenate([np.asarray(train.d), np.asarray(test.d)])
  np.testing.assert_allclose(np.sort(both), np.sort(np.asarray(ds.d)))
  with pytest.raises(ValueError):
    distill.split(ds, 1.5, jax.random.PRNGKey(0))


def test_loss_hand_value(agent):
  corr = correctors.Corrector(correctors.CorrectorConfig('mlp', hidden=8), 32, 1)
  params = corr.init(jax.random.PRNGKey(0))  # zero output: a_corr = a_spec
  batch = distill.Dataset(z_real=jnp.zeros((2, 32)), z_hat=jnp.zeros((2, 32)),
                          a_spec=jnp.array([[0.5], [-0.2]]), a_teacher=jnp.array([[0.1], [0.2]]),
                          d=jnp.zeros(2), history=jnp.zeros((2, 4, 97)), valid=jnp.ones((2, 4), bool),
                          k=jnp.ones(2, jnp.int32))
  loss, mse = distill.loss_fn(params, corr, batch, 0.1)
  np.testing.assert_allclose(mse, (0.4 ** 2 + 0.4 ** 2) / 2, rtol=1e-6)
  np.testing.assert_allclose(loss, mse, rtol=1e-6)  # regulariser is 0 when a_corr = a_spec


@pytest.mark.parametrize('kind', ['mlp', 'transformer'])
def test_training_beats_no_correction_on_heldout(data, kind):
  ds, _ = data
  corr = correctors.Corrector(correctors.CorrectorConfig(kind, hidden=64), 32, 1)
  _, metrics = distill.train(corr, ds, jax.random.PRNGKey(0), steps=300, batch_size=16,
                             holdout=0.25, epoch=150, lam=0.0)
  assert metrics['train_mse'] < metrics['curve'][0]['train_mse'] + 1e-9
  assert metrics['test_size'] == 10
  assert np.isfinite(metrics['mse_corrected'])


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
    state, out = sp.init_state(m, PC, cfg), []
    for t in range(5):
      a, state, _ = sp.step(m, p, PC, cfg, c, cp, state, jnp.sin(jnp.arange(5.0) + 0.1 * t),
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
    rows.append(evaluation.evaluate_mode(wm, params, PC, sp.SpecConfig(mode=mode), None, None, env,
                                         1e9, 2, jax.random.PRNGKey(0)))
  assert rows[0]['planner_calls'] == 12 and rows[0]['corrections'] == 0
  assert rows[1]['planner_calls'] == 4 and rows[1]['corrections'] == 8
  assert rows[1]['correct_ms_median'] > 0 and rows[1]['replan_ms_median'] > 0
  paths = evaluation.write_outputs(rows, str(tmp_path))
  assert 'baseline' in open(paths['md']).read()
  assert os.path.getsize(paths['png']) > 1000
