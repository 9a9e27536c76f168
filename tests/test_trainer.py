"""End to end: a few hundred steps of the tiny config, losses, checkpoints, resume, export."""
import csv
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import agent
from spec_jax import builders
from spec_jax import checkpoint
from spec_jax import planner
from spec_jax import replay
from spec_jax import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name):
  return builders.load_module(os.path.join(ROOT, 'experiments', f'{name}.py')).get_config()


def _rows(workdir):
  with open(os.path.join(workdir, 'metrics.csv')) as f:
    return list(csv.DictReader(f))


@pytest.fixture(scope='module')
def full_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('full'))
  cfg = load_config('tiny')
  cfg.steps = 300
  return cfg, workdir, trainer.train(cfg, workdir)


def test_tiny_run_end_to_end(full_run):
  cfg, workdir, result = full_run
  assert result['agent_step'] == 300 and not result['interrupted'] and not result['resumed']
  rows = _rows(workdir)
  # Units: agent steps are decisions; env steps count action repeat (2 in the tiny config).
  assert [int(r['agent_step']) for r in rows] == [50, 100, 150, 200, 250, 300]
  assert [int(r['env_step']) for r in rows] == [100, 200, 300, 400, 500, 600]
  assert result['env_step'] == 600
  losses = [float(r['total_loss']) for r in rows if r['total_loss']]
  assert len(losses) == 5 and losses[-1] < 0.6 * losses[0]
  assert rows[3]['eval_return'] != ''  # evaluated at step 200


def test_export_loads_alone_and_plans(full_run):
  cfg, workdir, result = full_run
  model, params, pcfg, meta = checkpoint.load_agent(result['export_dir'])
  assert meta['extra']['task'] == 'cartpole-swingup' and pcfg.num_samples == 32
  res, _ = planner.plan(model, params, pcfg, planner.init_state(pcfg, 1), jnp.zeros(5),
                        jax.random.PRNGKey(0), True)
  assert res.action.shape == (1,)


def test_interrupted_run_resumes_with_nothing_lost(full_run, tmp_path, monkeypatch):
  cfg, full_dir, _ = full_run
  workdir = str(tmp_path / 'interrupted')
  original = trainer._HostLoop.chunk
  calls = {'n': 0}

  def flaky_chunk(self, run, buf):
    calls['n'] += 1
    if calls['n'] == 4:
      raise KeyboardInterrupt
    return original(self, run, buf)

  monkeypatch.setattr(trainer._HostLoop, 'chunk', flaky_chunk)
  first = trainer.train(cfg, workdir)
  assert first['interrupted'] and first['agent_step'] == 150
  monkeypatch.setattr(trainer._HostLoop, 'chunk', original)
  compiled = (agent.update_epoch._cache_size(), planner.plan._cache_size())
  second = trainer.train(cfg, workdir)
  assert second['resumed'] and second['agent_step'] == 300
  # Restored state is uncommitted like fresh state: resuming reuses every compiled phase.
  assert (agent.update_epoch._cache_size(), planner.plan._cache_size()) == compiled
  # Same rows and the same final parameters as the uninterrupted run.
  assert [r['env_step'] for r in _rows(workdir)] == [r['env_step'] for r in _rows(full_dir)]
  np.testing.assert_allclose(float(_rows(workdir)[-1]['total_loss']),
                             float(_rows(full_dir)[-1]['total_loss']), rtol=1e-4)
  _, p1, _, _ = checkpoint.load_agent(os.path.join(full_dir, 'export'))
  _, p2, _, _ = checkpoint.load_agent(os.path.join(workdir, 'export'))
  for a, b in zip(jax.tree_util.tree_leaves(p1), jax.tree_util.tree_leaves(p2)):
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_export_records_both_step_units(full_run):
  _, _, result = full_run
  _, _, _, meta = checkpoint.load_agent(result['export_dir'])
  assert meta['extra']['agent_step'] == 300 and meta['extra']['env_step'] == 600


@pytest.mark.parametrize('n,chunk,sizes', [(250, 500, [250]), (2500, 500, [500] * 5),
                                           (1100, 500, [500, 500, 100]), (0, 50, [])])
def test_epoch_sizes_run_exactly_the_asked_number(n, chunk, sizes):
  assert trainer.epoch_sizes(n, chunk) == sizes


def _restore_full_run(cfg, workdir):
  """The full run's last checkpoint restored into fresh templates built as train() builds them:
  (model, train config, (run, buffer) templates, restored items, metadata, latest step)."""
  env = builders.make_env(cfg)
  model, pcfg, tcfg = builders.make_agent_configs(cfg, env.spec.obs_dim, env.spec.action_dim)
  run, buf = trainer._init_run(model, tcfg, pcfg, builders.run_config(cfg))
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'))
  latest = ckpt.latest_step()
  items, meta = ckpt.restore({'run': run, 'buffer': buf})
  ckpt.close()
  return model, tcfg, (run, buf), items, meta, latest


def test_updates_run_exactly_num_updates(full_run):
  cfg, workdir, _ = full_run
  model, tcfg, _, items, _, _ = _restore_full_run(cfg, workdir)
  before = int(items['run'].train.step)
  after, _ = trainer._updates(model, tcfg, items['run'], items['buffer'], 70, 50)
  assert int(after.train.step) - before == 70   # one epoch of 50 + a remainder epoch of 20


@pytest.mark.slow   # (session 17, test time; ~8 s of one worker)
def test_long_update_phases_log_their_progress(full_run, monkeypatch):
  # Seed-data pretraining runs thousands of updates in one phase: it must not be silent.
  # Epochs [20, 20, 20, 10], logged at most every 30 s, on a scripted clock: start 0, epochs
  # end at 100 (the first, compiling), 110, 140, 150. Logged: after epoch 1 (100 s since the
  # start; no rate yet), not after epoch 2 (10 s since the last line), after epoch 3: 40
  # updates in the 40 s since epoch 1 = 1.0 updates/s, 10 left = 0.2 min; never after the last.
  cfg, workdir, _ = full_run
  model, tcfg, _, items, _, _ = _restore_full_run(cfg, workdir)
  lines, clock = [], iter([0.0, 100.0, 110.0, 140.0, 150.0])
  monkeypatch.setattr(trainer, '_clock', lambda: next(clock))
  monkeypatch.setattr(trainer.logging, 'info', lambda fmt, *a: lines.append(fmt % a))
  after, _ = trainer._updates(model, tcfg, items['run'], items['buffer'], 70, 20)
  assert lines == ['updates 20/70 | first epoch (includes the compile)',
                   'updates 60/70 | 1.0 updates/s | ETA 0.2 min']
  assert int(after.train.step) - int(items['run'].train.step) == 70


def test_checkpoint_round_trip(full_run, tmp_path):
  cfg, workdir, _ = full_run
  _, _, (run, buf), items, meta, latest = _restore_full_run(cfg, workdir)
  assert latest == 300
  assert meta['agent_step'] == 300 and meta['env_step'] == 600
  assert int(items['run'].agent_step) == 300
  # Updates run exactly as asked: 100 pretraining updates at the end of the seed phase (step
  # 100), then 50 per 50-step episode (updates_per_step 1) for 4 episodes.
  assert int(items['run'].train.step) == 100 + 4 * 50
  assert int(items['buffer'].count) == 300
  # Save again elsewhere and restore: identical trees.
  other = checkpoint.Checkpointer(str(tmp_path / 'copy'))
  other.save(7, items, {'agent_step': 300})
  again, _ = other.restore({'run': run, 'buffer': buf})
  other.close()
  for a, b in zip(jax.tree_util.tree_leaves(items), jax.tree_util.tree_leaves(again)):
    np.testing.assert_array_equal(a, b)


def test_missing_and_incompatible_checkpoints(tmp_path, full_run):
  empty = checkpoint.Checkpointer(str(tmp_path / 'empty'))
  with pytest.raises(checkpoint.CheckpointError, match='no checkpoint'):
    empty.restore({'x': jnp.zeros(2)})
  empty.close()
  with pytest.raises(checkpoint.CheckpointError, match='does not exist'):
    checkpoint.load_agent(str(tmp_path / 'nope'))
  os.makedirs(tmp_path / 'partial')
  with pytest.raises(checkpoint.CheckpointError, match='not a complete'):
    checkpoint.load_agent(str(tmp_path / 'partial'))
  cfg, workdir, _ = full_run
  bigger = load_config('tiny')
  bigger.steps, bigger.buffer_size = 300, 500
  bigger.model.latent_dim = 64
  # Refused before any array is read, naming what differs.
  with pytest.raises(checkpoint.CheckpointError,
                     match=r"does not match .*'run'.*params/dynamics/dense_out/bias: saved \(32,\), "
                           r"expected \(64,\)"):
    trainer.train(bigger, workdir)


def test_bad_config():
  cfg = load_config('tiny')
  cfg.backend = 'gym'
  with pytest.raises(ValueError, match='backend'):
    trainer.train(cfg, '/tmp/never-created-spec-jax')


def test_wall_minutes_stops_saves_and_exports_then_resumes(full_run, tmp_path):
  cfg, full_dir, _ = full_run
  cfg = cfg.copy_and_resolve_references()
  cfg.wall_minutes, cfg.export_dtype = 1e-4, 'float16'  # 6 ms: less than any episode takes
  workdir = str(tmp_path / 'timed')
  first = trainer.train(cfg, workdir)
  # One episode (50 agent steps) then the limit: a checkpoint AND an export, not 'interrupted'.
  assert first['agent_step'] == 50 and not first['interrupted'] and first['timed_out']
  assert checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints')).latest_step() == 50
  _, params, _, meta = checkpoint.load_agent(first['export_dir'])
  assert meta['storage_dtype'] == 'float16' and meta['extra']['agent_step'] == 50
  second = trainer.train(cfg, workdir)
  assert second['resumed'] and second['agent_step'] == 100
  # Nothing lost across the time stops: the same rows as the uninterrupted run.
  ours, full = _rows(workdir), _rows(full_dir)[:2]
  assert [(r['agent_step'], r['episode_return']) for r in ours] == [
      (r['agent_step'], r['episode_return']) for r in full]
  np.testing.assert_allclose(float(ours[-1]['total_loss']), float(full[-1]['total_loss']),
                             rtol=1e-4)
  cfg.wall_minutes = -1
  with pytest.raises(ValueError, match='wall_minutes'):
    trainer.train(cfg, str(tmp_path / 'bad'))
  cfg.wall_minutes, cfg.export_dtype = 0.0, 'bfloat16'
  with pytest.raises(ValueError, match='export_dtype'):
    trainer.train(cfg, str(tmp_path / 'bad'))


@pytest.mark.slow
def test_mjx_many_envs_feed_one_buffer(tmp_path):
  cfg = load_config('tiny_mjx')
  result = trainer.train(cfg, str(tmp_path))
  assert result['agent_step'] == 160 and result['episode'] == 4  # 4 envs x 1 episode of 25 steps
  rows = _rows(str(tmp_path))
  assert [int(r['agent_step']) for r in rows] == [40, 80, 120, 160]
  assert rows[-1]['total_loss'] != ''
  model, params, pcfg, _ = checkpoint.load_agent(result['export_dir'])
  assert model.cfg.obs_dim == 5


def test_episode_ids_after_resume_exceed_every_stored_id():
  # One env resumed mid-episode: the buffer holds finished episodes 1, 2 and the unfinished
  # episode 3 (run.episode counts the 2 finished). New episodes must start at 4, not 3.
  buf = replay.init(1, 32, 2, 1)
  ids = jnp.array([1] * 8 + [2] * 8 + [3] * 5)[:, None]
  buf = replay.add_sequence(buf, jnp.zeros((21, 1, 2)), jnp.zeros((21, 1, 1)),
                            jnp.zeros((21, 1)), ids)
  run = trainer.RunState(train=None, planner=None, key=None, agent_step=jnp.int32(21),
                         episode=jnp.int32(2), pretrained=jnp.bool_(True))
  assert trainer.first_episode_id(buf, run) == 4
  # Lock-step envs resumed before their first episode ended: buffer ids all 1, episode 0.
  fresh = replay.add_sequence(replay.init(3, 8, 2, 1), jnp.zeros((4, 3, 2)), jnp.zeros((4, 3, 1)),
                              jnp.zeros((4, 3)), jnp.ones((4, 3), jnp.int32))
  assert trainer.first_episode_id(fresh, run.replace(episode=jnp.int32(0))) == 2


def test_metrics_csv_from_before_units_is_migrated(tmp_path):
  path = str(tmp_path / 'metrics.csv')
  with open(path, 'w') as f:
    f.write('env_step,episode,eval_return\n500,1,3.5\n')
  w = trainer.MetricsWriter(path)
  w.write(dict(agent_step=1000, env_step=2000, episode=2))
  rows = _rows(str(tmp_path))
  assert [r['agent_step'] for r in rows] == ['500', '1000']   # old env_step held agent steps
  assert rows[1]['env_step'] == '2000' and rows[0]['eval_return'] == '3.5'
  # A second migration (other columns again) keeps the first one's backup as well.
  trainer.MetricsWriter(path, columns=trainer.CSV_COLUMNS + ('extra',)).write(dict(agent_step=1500))
  assert os.path.exists(path + '.old') and os.path.exists(path + '.old1')
  with open(path + '.old') as f:
    assert f.readline().strip() == 'env_step,episode,eval_return'
  assert [r['agent_step'] for r in _rows(str(tmp_path))] == ['500', '1000', '1500']


def test_resume_with_more_steps_keeps_replay_capacity(full_run, tmp_path):
  # Extending a finished run (steps 300 -> 400) changes the capacity the config implies
  # (min(buffer_size, steps)); the resumed run keeps the checkpoint's buffer instead of failing.
  import shutil
  cfg, workdir, _ = full_run
  work2 = str(tmp_path / 'extended')
  shutil.copytree(workdir, work2)
  longer = load_config('tiny')
  longer.steps = 400
  result = trainer.train(longer, work2)
  assert result['resumed'] and result['agent_step'] == 400
  assert [int(r['agent_step']) for r in _rows(work2)][-2:] == [350, 400]
