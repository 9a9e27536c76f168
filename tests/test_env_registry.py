"""The environment registry: backends, capabilities, lazy imports, the typed run config, and
the jobs (trainer evaluation, evaluate, distill, sweep) building the export's backend."""
import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from spec_jax import builders
from spec_jax import checkpoint
from spec_jax import config
from spec_jax import distill
from spec_jax import envs
from spec_jax import speculation as sp
from spec_jax import evaluation
from spec_jax import sweep
from spec_jax import trainer
from spec_jax.envs import batch
import toy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Built(Exception):
  """Raised by the recording factories: which backend was built, with what."""


def _recording(name):
  def factory(task, **options):
    raise Built(name, task, options)
  return factory


@pytest.fixture
def fakes(monkeypatch):
  """A fresh registry (undone after) with a host fake, a traced fake and two recorders."""
  monkeypatch.setattr(envs, 'REGISTRY', dict(envs.REGISTRY))
  envs.register('fake-host', lambda task, **kw: toy.FakeEnv(np.zeros((kw['episode_length'], 5)),
                                                            1), host=True)
  envs.register('fake-traced', lambda task, **kw: toy.FakeJaxEnv(
      episode_length=kw['episode_length']), traced=True)
  envs.register('rec-host', _recording('rec-host'), host=True)
  envs.register('rec-traced', _recording('rec-traced'), traced=True)


def test_registered_backends_and_capabilities():
  assert {'dmc', 'mjx', 'brax'} <= set(envs.names())
  assert 'dmc' in envs.names(envs.HOST) and 'dmc' not in envs.names(envs.TRACED)
  assert {'mjx', 'brax'} <= set(envs.names(envs.TRACED))
  with pytest.raises(ValueError, match=r"Unknown environment backend 'gym'; known: .*'dmc'"):
    envs.make('gym', 'cartpole-swingup')
  with pytest.raises(ValueError, match=r"'dmc' has no traced .*\['brax', 'mjx'\]"):
    envs.backend('dmc', envs.TRACED)
  with pytest.raises(ValueError, match='host or the traced'):
    envs.register('neither', lambda task, **kw: None)


def test_make_builds_the_named_backend_with_its_options(fakes):
  with pytest.raises(Built) as built:
    envs.make('rec-host', 'cartpole-swingup', seed=3, episode_length=7, model_scale={'mass': 2.0})
  assert built.value.args == ('rec-host', 'cartpole-swingup', dict(
      seed=3, action_repeat=2, episode_length=7, model_scale={'mass': 2.0}, impl=''))
  env = envs.make('fake-traced', 'x', need=envs.TRACED, episode_length=9)
  assert isinstance(env, toy.FakeJaxEnv) and env.spec.episode_length == 9


def test_lazy_factory_passes_what_the_class_takes(monkeypatch):
  import types
  module = types.ModuleType('spec_jax.envs.fake_mod')

  class Takes:
    def __init__(self, task, impl='a', episode_length=1):
      self.args = (task, impl, episode_length)
  module.Takes = Takes
  monkeypatch.setitem(sys.modules, 'spec_jax.envs.fake_mod', module)
  factory = envs.lazy('fake_mod', 'Takes')
  env = factory('t', seed=5, impl='', episode_length=4, model_scale=None, action_repeat=0)
  assert env.args == ('t', 'a', 4)       # seed dropped, empty impl -> the class default
  with pytest.raises(ValueError, match=r"does not take \['model_scale'\]"):
    factory('t', model_scale={'mass': 2.0})


def test_simulators_are_imported_only_when_used():
  code = ('import sys; import spec_jax.envs, spec_jax.builders, spec_jax.trainer, '
          'spec_jax.sweep; print(sorted(m for m in ("dm_control", "mujoco_playground", "brax") '
          'if m in sys.modules))')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                       env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert out.stdout.strip() == '[]', out.stdout


def test_batch_reset_step_autoresets_a_traced_backend():
  env = toy.FakeJaxEnv(episode_length=2)
  state = batch.reset(env, jax.random.PRNGKey(0), 3)
  assert state.obs.shape == (3, 5)
  out = batch.step(env, state, jnp.zeros((3, 1)))
  assert not bool(out.done.any()) and np.all(np.asarray(out.state.t) == 1)
  out2 = batch.step(env, out.state, jnp.zeros((3, 1)))
  assert bool(out2.done.all()) and np.all(np.asarray(out2.state.t) == 0)
  np.testing.assert_allclose(out2.final_return, out.reward + out2.reward, rtol=1e-6)
  fresh = jax.vmap(env.reset_one)(jax.vmap(jax.random.split)(out.state.key)[:, 0]).obs
  np.testing.assert_allclose(out2.obs, fresh)
  with pytest.raises(ValueError, match=r'outside \[-1, 1\]'):
    batch.step(env, state, 2 * jnp.ones((3, 1)))


def _tiny(**overrides):
  cfg = builders.load_module(os.path.join(ROOT, 'experiments', 'tiny.py')).get_config()
  cfg.update(overrides)
  return cfg


def test_run_config_is_typed_once_and_checked(fakes):
  rc = builders.run_config(_tiny(model_scale={'mass': 2.0}))
  assert isinstance(rc, builders.RunConfig) and rc.steps == 200 and rc.eval_every == 200
  assert rc.model_scale == (('mass', 2.0),) and not rc.batched
  assert builders.run_config(rc) is rc
  with pytest.raises(Exception):
    rc.steps = 5    # frozen
  assert builders.run_config(_tiny(backend='fake-traced', num_envs=4)).batched
  with pytest.raises(ValueError, match=r"Unknown environment backend 'gym'; known"):
    builders.run_config(_tiny(backend='gym'))
  with pytest.raises(ValueError, match=r"'fake-traced' has no .*host loop"):   # eval_backend
    builders.run_config(_tiny(backend='mjx', eval_backend='fake-traced'))
  cfg = _tiny()
  del cfg['steps']
  assert builders.run_config(cfg).steps == builders.RunConfig().steps
  del cfg['task']
  with pytest.raises(ValueError, match='lacks'):
    builders.run_config(cfg)


def test_make_env_goes_through_the_registry(fakes):
  with pytest.raises(Built) as built:
    builders.make_env(_tiny(backend='rec-traced', impl='warp', model_scale={'mass': 2.0}), seed=4)
  name, task, options = built.value.args
  assert (name, task) == ('rec-traced', 'cartpole-swingup')
  assert options == dict(seed=4, action_repeat=2, episode_length=50, model_scale={'mass': 2.0},
                         impl='warp')


def test_trainer_evaluates_on_the_host_backend_or_eval_backend(fakes, monkeypatch):
  seen = []
  monkeypatch.setattr(trainer, 'evaluate', lambda model, params, pcfg, env, n, key:
                      seen.append(env) or dict(eval_return=0.0))
  run = type('Run', (), dict(agent_step=200, train=type('T', (), dict(params=None))))()

  def eval_env(**overrides):
    loop = trainer._Loop(builders.run_config(_tiny(**overrides)), '/tmp', None, None, None, None,
                         None)
    loop.maybe_eval(run, 0)
    return loop.eval_env
  assert isinstance(eval_env(backend='fake-host'), toy.FakeEnv)
  with pytest.raises(Built, match='rec-host'):                # its own host loop first
    eval_env(backend='rec-host', eval_backend='fake-host')
  with pytest.raises(Built, match='rec-host'):                # no host loop: eval_backend
    eval_env(backend='fake-traced', eval_backend='rec-host')
  assert builders.make_eval_env(_tiny(backend='fake-traced', eval_backend='fake-host'))[1] == (
      "backend 'fake-traced' has no host loop: evaluating on 'fake-host' (config eval_backend)")


@pytest.fixture
def export(tmp_path):
  """A small export that records the backend 'rec-host' (write ``backend`` to change it)."""
  wm, params = toy.small_agent()
  pc = config.PlannerConfig(horizon=3, iterations=1, num_samples=8, num_elites=2, num_pi_trajs=2)
  return lambda backend: checkpoint.export_agent(
      str(tmp_path / backend), wm.cfg, params, pc,
      extra=dict(task='cartpole-swingup', action_repeat=2, episode_length=6, backend=backend))


def test_jobs_build_the_export_backend(fakes, export, tmp_path):
  host, traced = export('rec-host'), export('rec-traced')
  ecfg = ml_collections.ConfigDict(dict(seed=0, episodes=1, blocks=()))
  with pytest.raises(Built, match='rec-host'):
    evaluation.run(ecfg, host, str(tmp_path / 'ev'))
  dcfg = ml_collections.ConfigDict(dict(seed=0))
  with pytest.raises(Built, match='rec-host'):
    distill.run(dcfg, host, str(tmp_path / 'di'))
  scfg = ml_collections.ConfigDict(dict(
      task='', mode='spec', taus=(0.5,), tau_quantiles=(), horizons=(2,), seeds=(0,), episodes=1,
      episode_length=0, perturbations=('mass=2.0',), num_processes=1, process_id=0))
  with pytest.raises(Built) as built:
    sweep.run(scfg, traced, str(tmp_path / 'sw'))
  assert built.value.args[0] == 'rec-traced' and built.value.args[2]['model_scale'] == {
      'mass': 2.0}
  with pytest.raises(ValueError, match=r"traced backend, one of \[.*'rec-traced'.*'rec-host' is"):
    sweep.run(scfg, host, str(tmp_path / 'sw'))
  scfg.backend = 'rec-traced'      # a config's backend overrides the export's
  with pytest.raises(Built, match='rec-traced'):
    sweep.run(scfg, host, str(tmp_path / 'sw'))
  ecfg.backend = 'gym'
  with pytest.raises(ValueError, match="Unknown environment backend 'gym'"):
    evaluation.run(ecfg, host, str(tmp_path / 'ev'))


def test_export_without_a_backend_runs_on_dmc():
  assert envs.export_backend({}) == 'dmc'
  assert envs.export_backend({'backend': 'mjx'}) == 'mjx'
  assert envs.export_backend({'backend': 'mjx'}, 'brax') == 'brax'


@pytest.mark.slow
def test_brax_backend_through_the_registry():
  env = envs.make('brax', 'inverted-pendulum', need=envs.TRACED, episode_length=3)
  assert (env.spec.obs_dim, env.spec.action_dim) == (4, 1)
  out = batch.step(env, batch.reset(env, jax.random.PRNGKey(0), 2), jnp.zeros((2, 1)))
  assert out.obs.shape == (2, 4) and np.all(np.isfinite(np.asarray(out.reward)))
  heavy = envs.make('brax', 'inverted-pendulum', model_scale={'mass': 2.0})
  np.testing.assert_allclose(heavy.brax_env.sys.body_mass, 2.0 * env.brax_env.sys.body_mass)
  with pytest.raises(ValueError, match='Unknown Brax task'):
    envs.make('brax', 'cartpole-swingup')


def test_traced_backend_runs_in_the_host_loop(fakes):
  from spec_jax.envs import host_adapter
  env = envs.make('fake-traced', 'fake', need=envs.HOST, episode_length=3)
  assert isinstance(env, host_adapter.HostAdapter) and env.spec.episode_length == 3
  ref = toy.FakeJaxEnv(episode_length=3)
  obs = env.reset(seed=7)
  state = ref.reset_one(jax.random.PRNGKey(7))
  np.testing.assert_array_equal(obs, state.obs)
  dones = []
  for a in (0.5, -1.0, 0.25):
    obs, r, done, info = env.step(np.array([a], np.float32))
    state, r_ref = ref.step_one(state, jnp.array([a]))
    np.testing.assert_allclose(obs, state.obs, rtol=1e-6)
    np.testing.assert_allclose(r, r_ref, rtol=1e-6)
    dones.append(done)
  assert dones == [False, False, True]                       # episode_length agent steps
  np.testing.assert_array_equal(env.reset(seed=7), ref.reset_one(jax.random.PRNGKey(7)).obs)
  with pytest.raises(ValueError, match='shape'):
    env.step(np.zeros(2))
  # Exploded physics ends the episode and is flagged.
  boom = host_adapter.HostAdapter(toy.FakeJaxEnv(episode_length=10, nan_at=2))
  boom.reset(seed=0)
  assert boom.step(np.zeros(1))[2] is False
  _, r, done, info = boom.step(np.zeros(1))
  assert done and info['nonfinite'] and r == 0.0     # the backend's NaN reward is not summed
  # make's seed starts the adapter's seed counter (reset() without a seed).
  starts = [envs.make('fake-traced', 'x', need=envs.HOST, seed=s).reset() for s in (5, 5, 6)]
  np.testing.assert_array_equal(starts[0], ref.reset_one(jax.random.PRNGKey(5)).obs)
  assert np.array_equal(starts[0], starts[1]) and not np.array_equal(starts[0], starts[2])
  # A traced export is evaluated on its own backend by the host-loop jobs.
  wm, params = toy.small_agent()
  ex = sp.Executor(wm, config.PlannerConfig(horizon=3, iterations=1, num_samples=16,
                                            num_elites=2, num_pi_trajs=2),
                   sp.SpecConfig(mode='spec', exec_len=2))
  out = evaluation.run_episode(ex, sp.ExecParams(params), env, jax.random.PRNGKey(0), 3, 1e9)
  assert len(out['step_ms']) == 3 and out['planner_calls'] == 2


def test_a_hand_built_run_config_is_checked_too(fakes):
  rc = builders.run_config(_tiny())
  assert builders.run_config(rc) is rc
  for bad, match in ((dict(wall_minutes=-1.0), 'wall_minutes'),
                     (dict(export_dtype='int8'), 'export_dtype'),
                     (dict(backend='gym'), 'Unknown environment backend'),
                     (dict(collect_exec_len=2), 'needs a batched traced backend')):
    with pytest.raises(ValueError, match=match):
      builders.run_config(dataclasses.replace(rc, **bad))
