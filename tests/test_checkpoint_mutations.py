"""Checkpoint and export behaviour on small hand-made trees (fast; the training-run checkpoints
are exercised end to end in test_trainer.py): which step a restore picks, max_to_keep, items
that were not saved, dtype of float16 storage, export metadata errors and the version-1
migration, the acceptance heads of an export."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import acceptance as acc
from spec_jax import checkpoint
from spec_jax import config
from spec_jax import correctors
from spec_jax import world_model
import toy

PC = config.PlannerConfig(horizon=3, iterations=2, num_samples=32, num_elites=4, num_pi_trajs=4)


def _run(step):
  return {'w': jnp.arange(3.0) * step, 'n': jnp.asarray(step, jnp.int32),
          'h': jnp.full((2,), 0.5 * step, jnp.float16)}


def test_checkpointer_keeps_the_newest_steps_and_restores_the_latest(tmp_path):
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'ck'), max_to_keep=2)
  for step in (1, 2, 3):
    ckpt.save(step, {'run': _run(step)}, {'agent_step': 10 * step})
  assert ckpt.latest_step() == 3
  # max_to_keep 2: step 1 was deleted.
  assert sorted(int(d) for d in os.listdir(ckpt.directory) if d.isdigit()) == [2, 3]
  template = {'run': _run(0), 'buffer': jnp.zeros(4)}
  items, meta = ckpt.restore(template)
  # The latest step: w = (0, 1, 2) * 3, n = 3 (int32 kept), h = 1.5 in float16; the buffer was
  # never saved: None (the trainer then refills it), not the template.
  np.testing.assert_array_equal(items['run']['w'], [0.0, 3.0, 6.0])
  assert int(items['run']['n']) == 3 and items['run']['n'].dtype == jnp.int32
  assert items['run']['h'].dtype == jnp.float16
  np.testing.assert_array_equal(items['run']['h'], [1.5, 1.5])
  assert items['buffer'] is None
  assert meta['agent_step'] == 30 and meta['items'] == ['run']
  items, meta = ckpt.restore(template, step=2)
  np.testing.assert_array_equal(items['run']['w'], [0.0, 2.0, 4.0])
  assert meta['agent_step'] == 20
  assert ckpt.saved_shapes('run') == {'w': (3,), 'n': (), 'h': (2,)}
  assert ckpt.saved_shapes('buffer') is None
  # A template of another shape is refused before any read, naming the leaf.
  with pytest.raises(checkpoint.CheckpointError, match=r"'run'.*w: saved \(3,\), expected \(4,\)"):
    ckpt.restore({'run': dict(_run(0), w=jnp.zeros(4))})
  ckpt.close()


def _tiny_agent():
  wm = world_model.WorldModel(config.model_config(1, 2, 1, latent_dim=8, mlp_dim=8, enc_dim=8))
  params = toy.zero_params(wm.init)   # one leaf set to 0.1 below
  params['encoder']['dense_0']['bias'] = jnp.full((8,), 0.1)
  return wm, params


@pytest.fixture(scope='module')
def tiny_agent():
  return _tiny_agent()


def test_float16_storage_is_float16_on_disk_and_float32_when_loaded(tiny_agent, tmp_path):
  # 0.1 has no exact float16: the nearest is 1638 / 2^14 = 0.0999755859375, which float32
  # holds exactly. A float16 export therefore loads 0.0999755859375 (as float32); a float32
  # export loads float32(0.1).
  wm, params = tiny_agent
  half = checkpoint.export_agent(str(tmp_path / 'h'), wm.cfg, params, PC, storage_dtype='float16')
  _, loaded, _, meta = checkpoint.load_agent(half)
  assert meta['storage_dtype'] == 'float16'
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(loaded))
  np.testing.assert_array_equal(loaded['encoder']['dense_0']['bias'],
                                np.full(8, 0.0999755859375, np.float32))
  full = checkpoint.export_agent(str(tmp_path / 'f'), wm.cfg, params, PC)
  _, loaded, _, _ = checkpoint.load_agent(full)
  np.testing.assert_array_equal(loaded['encoder']['dense_0']['bias'], np.full(8, 0.1, np.float32))


def _fake_export(path, **meta):
  """metadata.json + an (empty) params/ directory: enough for read_export_metadata."""
  os.makedirs(os.path.join(path, 'params'))
  base = dict(format='spec_jax.agent', version=2, model={}, planner={}, trees=['world_model'],
              extra={}, storage_dtype='float32')
  with open(os.path.join(path, 'metadata.json'), 'w') as f:
    json.dump({k: v for k, v in dict(base, **meta).items() if v is not None}, f)
  return str(path)


def test_export_metadata_format_dtype_and_version_errors(tmp_path):
  with pytest.raises(checkpoint.CheckpointError, match='unknown export format'):
    checkpoint.read_export_metadata(_fake_export(tmp_path / 'a', format='other.agent'))
  with pytest.raises(checkpoint.CheckpointError, match="unknown storage_dtype 'int8'"):
    checkpoint.read_export_metadata(_fake_export(tmp_path / 'b', storage_dtype='int8'))
  with pytest.raises(checkpoint.CheckpointError, match='version 3 is not supported'):
    checkpoint.read_export_metadata(_fake_export(tmp_path / 'c', version=3))
  assert checkpoint.read_export_metadata(_fake_export(tmp_path / 'd'))['version'] == 2


def test_version_1_migration_by_hand(tmp_path):
  # v1 stored agent steps as extra.env_step: env_step 40 with action repeat 4 -> agent_step 40,
  # env_step 160; without action_repeat the repeat is 1 -> env_step 40; without env_step
  # nothing is invented. Storage was always float32.
  meta = checkpoint.read_export_metadata(_fake_export(
      tmp_path / 'a', version=1, storage_dtype=None, extra=dict(env_step=40, action_repeat=4)))
  assert (meta['version'], meta['storage_dtype']) == (2, 'float32')
  assert (meta['extra']['agent_step'], meta['extra']['env_step']) == (40, 160)
  meta = checkpoint.read_export_metadata(_fake_export(tmp_path / 'b', version=1,
                                                      extra=dict(env_step=40)))
  assert (meta['extra']['agent_step'], meta['extra']['env_step']) == (40, 40)
  meta = checkpoint.read_export_metadata(_fake_export(tmp_path / 'c', version=1,
                                                      extra=dict(task='t')))
  assert meta['extra'] == dict(task='t')
  # A version-2 export keeps its step counts as written.
  meta = checkpoint.read_export_metadata(_fake_export(
      tmp_path / 'd', extra=dict(agent_step=40, env_step=160, action_repeat=4)))
  assert (meta['extra']['agent_step'], meta['extra']['env_step']) == (40, 160)


def test_export_round_trip_of_correctors_and_acceptance_heads(tiny_agent, tmp_path):
  # Zero parameters but for distinguishable constants: the corrector's delta_out bias 0.25, the
  # head's output bias -1.5.
  wm, params = tiny_agent
  cor = correctors.Corrector(correctors.CorrectorConfig('mlp', hidden=4, history=2), 8, 1)
  cp = toy.zero_params(cor.init)
  cp['GatedHead_0']['delta_out']['bias'] = jnp.full((1,), 0.25)
  head = acc.AcceptanceHead(8, 1, horizon=3, hidden=(4,))
  hp = toy.zero_params(head.init)
  hp['Dense_1']['bias'] = jnp.full((1,), -1.5)
  out = checkpoint.export_with_correctors(str(tmp_path / 'e'), wm, params, PC, {'mlp': (cor, cp)},
                                          acceptance={'spec': (head, hp, {'eps': 0.5})})
  _, _, pc, cors, meta, heads = checkpoint.load_with_correctors(out, with_acceptance=True)
  assert pc == PC and set(cors) == {'mlp'} and set(heads) == {'spec'}
  assert cors['mlp'][0] == cor and heads['spec'][0] == head
  np.testing.assert_array_equal(cors['mlp'][1]['GatedHead_0']['delta_out']['bias'], [0.25])
  np.testing.assert_array_equal(heads['spec'][1]['Dense_1']['bias'], [-1.5])
  assert meta['extra']['acceptance']['spec']['metrics'] == {'eps': 0.5}
  assert len(checkpoint.load_with_correctors(out)) == 5   # no heads unless asked
