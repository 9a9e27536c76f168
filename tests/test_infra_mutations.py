"""Bookkeeping of the training loop, the run config, the environments and the converter,
checked by hand on fakes (mutation check, session 17: each test names the mutations it
catches; see results/mutation_checks/session17_trainer_builders_convert_envs.md).

No simulator and no world model is run: the trainer's loops get a host fake (toy.FakeEnv) or
an in-JAX counting environment in the random (seed) phase, where they plan nothing."""
import csv
import dataclasses
import os
import time
import types
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import builders
from spec_jax import checkpoint
from spec_jax import config
from spec_jax import convert
from spec_jax import envs
from spec_jax import replay
from spec_jax import trainer
from spec_jax import world_model
from spec_jax.envs import batch
from spec_jax.envs import host_adapter
from spec_jax.envs import task_view
import toy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')


class CountState(NamedTuple):
  obs: jax.Array   # [2]: (start drawn from the reset key, agent steps taken this episode)
  done: jax.Array  # [] (> 0 once the backend ends the episode)


@dataclasses.dataclass(frozen=True)
class CountEnv:
  """Traced fake: obs = (start, t); the t-th step of an episode rewards t whatever the action
  (an episode of L steps returns L (L + 1) / 2); with ``stop_at`` > 0 the backend itself ends
  the episode after that many steps (done set, observation finite)."""
  episode_length: int = 3
  stop_at: int = 0

  @property
  def spec(self):
    return envs.EnvSpec('count', 2, 1, self.episode_length, 1)

  def reset_one(self, key):
    return CountState(jnp.stack([jax.random.uniform(key), jnp.zeros(())]), jnp.zeros(()))

  def step_one(self, state, action):
    t = state.obs[1] + 1.0
    done = ((self.stop_at > 0) & (t >= self.stop_at)).astype(jnp.float32)
    return CountState(state.obs.at[1].set(t), done), t


def _run_state(agent_step=0, episode=0):
  return trainer.RunState(train=types.SimpleNamespace(params=None), planner=None,
                          key=jax.random.PRNGKey(0), agent_step=jnp.int32(agent_step),
                          episode=jnp.int32(episode), pretrained=jnp.zeros((), bool))


# ---- envs.batch: auto-reset --------------------------------------------------------------------

def test_batch_auto_reset_on_backend_done_by_hand():
  # E1 (backend done ignored), E2 (final_obs after the reset), E3 (episode return not reset),
  # E4 (per-env reset keys not advanced: every episode of an env starts alike).
  # The backend ends every episode after 2 steps (the time limit, 10, never comes): dones at
  # steps 2, 4, 6; each episode returns 1 + 2 = 3; final_obs has t = 2, the next obs t = 0.
  env = CountEnv(episode_length=10, stop_at=2)
  state = batch.reset(env, jax.random.PRNGKey(0), 2)
  starts = [np.asarray(state.obs[:, 0])]
  for step in range(1, 7):
    out = batch.step(env, state, jnp.zeros((2, 1)))
    state = out.state
    ended = step % 2 == 0
    np.testing.assert_array_equal(out.done, [ended, ended])
    np.testing.assert_array_equal(out.reward, [2 - step % 2] * 2)
    if ended:
      np.testing.assert_array_equal(out.final_obs[:, 1], [2, 2])     # reached by this step
      np.testing.assert_array_equal(out.obs[:, 1], [0, 0])           # the reset observation
      np.testing.assert_array_equal(out.final_return, [3, 3])        # this episode's only
      np.testing.assert_array_equal(state.episode_return, [0, 0])
      np.testing.assert_array_equal(state.t, [0, 0])
      starts.append(np.asarray(out.obs[:, 0]))
  starts = np.stack(starts)            # [4 episodes, 2 envs]: all distinct draws
  assert len(np.unique(starts)) == starts.size


def test_repeat_step_sums_the_rewards_of_every_repeat():
  # E5: repeat 3 with the same action 2.0; the k-th simulator step rewards k * action:
  # 2 + 4 + 6 = 12 (the last step alone: 6), and the state advanced 3 times.
  class S(NamedTuple):
    n: jax.Array
    reward: jax.Array

  state, reward = batch.repeat_step(lambda s, a: S(s.n + 1, (s.n + 1) * a),
                                    S(jnp.zeros(()), jnp.zeros(())), jnp.float32(2.0), 3)
  assert float(reward) == 12.0 and float(state.n) == 3.0


# ---- envs.host_adapter ---------------------------------------------------------------------

def test_host_adapter_ends_on_backend_done_and_counts_reset_seeds():
  # E6: a finite backend done ends the episode (not only the time limit or NaNs).
  env = host_adapter.HostAdapter(CountEnv(episode_length=10, stop_at=2), seed=5)
  env.reset(seed=0)
  assert env.step(np.zeros(1))[1:3] == (1.0, False)
  _, reward, done, info = env.step(np.zeros(1))
  assert (reward, done, info['nonfinite']) == (2.0, True, False)
  # E7: reset() without a seed continues the counter: seed 5, then 6 (after reset(seed=0): 1).
  fresh = host_adapter.HostAdapter(CountEnv(), seed=5)
  want = [CountEnv().reset_one(jax.random.PRNGKey(s)).obs for s in (5, 6)]
  np.testing.assert_array_equal(fresh.reset(), want[0])
  np.testing.assert_array_equal(fresh.reset(), want[1])
  np.testing.assert_array_equal(env.reset(), CountEnv().reset_one(jax.random.PRNGKey(1)).obs)


def test_task_views_take_the_largest_task_itself():
  # E8: the set's largest task has exactly the model's dimensions and must fit.
  view = task_view.TaskView(toy.FakeEnv(np.ones((2, 5)), 2), 5, 2)
  np.testing.assert_array_equal(view.reset(), np.ones(5))
  traced = task_view.TracedTaskView(toy.FakeJaxEnv(obs_dim=5, action_dim=2), 5, 2)
  assert traced.reset_one(jax.random.PRNGKey(0)).obs.shape == (5,)


def test_dmc_reset_seed_reseeds_the_initial_state():
  # E11: reset(seed) must reseed (the host trainer's per-episode seeds rely on it).
  from spec_jax.envs import dmc
  env = dmc.DMCEnv('cartpole-swingup', seed=0, episode_length=2)
  a, b, c = env.reset(seed=3), env.reset(seed=3), env.reset(seed=4)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


# ---- trainer: the host loop (one episode per chunk) ---------------------------------------

class SeedEnv(toy.FakeEnv):
  """FakeEnv recording the seed of every reset."""

  def __init__(self, observations, action_dim):
    super().__init__(observations, action_dim)
    self.seeds = []

  def reset(self, seed=None):
    self.seeds.append(seed)
    return super().reset(seed)


def _host_loop(env, tmp_path):
  rc = builders.RunConfig(seed=2, seed_steps=10**6, episode_length=env.spec.episode_length,
                          action_repeat=1)
  return trainer._HostLoop(rc, str(tmp_path), env, toy.ToyModel(), None, None, None)


def test_host_loop_seeds_counts_and_labels_each_episode(tmp_path):
  # T2 (reset seed without the episode), T3 (same random actions every episode), T4 (episode
  # counter not advanced), T16 (a non-finite observation does not get the safe action).
  # Episodes of 4 steps, seed 2: reset seeds 2 * 1_000_003 + episode; replay ids = episode.
  obs = np.arange(12.0).reshape(4, 3)
  obs[2] = np.nan                      # the observation of step 2 is non-finite
  env = SeedEnv(obs, 2)
  loop = _host_loop(env, tmp_path)
  buf = replay.init(1, 16, 3, 2)
  run, buf, metrics, returns = loop.chunk(_run_state(), buf)
  assert metrics is None and len(returns) == 1
  run, buf, _, _ = loop.chunk(run, buf)
  assert (int(run.agent_step), int(run.episode)) == (8, 2)
  assert env.seeds == [2_000_006, 2_000_007]
  np.testing.assert_array_equal(buf.episode[0, :8], [0] * 4 + [1] * 4)
  actions = np.asarray(buf.action[0, :8])
  np.testing.assert_array_equal(actions[[2, 6]], 0.0)            # safe action at the NaN obs
  assert np.all(np.abs(actions[[0, 1, 3, 4, 5, 7]]) > 0)
  assert not np.allclose(actions[:4], actions[4:])               # each episode its own draws
  # A run resumed at episode 1 replays episode 1 exactly (seed and random actions).
  env2 = SeedEnv(obs, 2)
  _, buf2, _, _ = _host_loop(env2, tmp_path).chunk(_run_state(4, 1), replay.init(1, 16, 3, 2))
  assert env2.seeds == [2_000_007]
  np.testing.assert_array_equal(buf2.action[0, :4], actions[4:])


# ---- trainer: the batched loop (chunk_steps vector steps per chunk) -------------------------

def _batch_loop(tmp_path, chunk_steps=2):
  rc = builders.RunConfig(backend='mjx', num_envs=2, chunk_steps=chunk_steps, seed_steps=10**6,
                          episode_length=3, action_repeat=1)
  pc = config.PlannerConfig(horizon=1, iterations=1, num_samples=2, num_elites=1, num_pi_trajs=0)
  return trainer._BatchLoop(rc, str(tmp_path), CountEnv(episode_length=3), toy.ToyModel(
      cfg=toy.ToyCfg(obs_dim=2, action_dim=1, latent_dim=2)), pc, None, None)


def test_batch_loop_counts_episodes_labels_steps_and_resumes_with_new_ids(tmp_path):
  # T10 (episodes counted once per chunk, not per env), T11 (the done step's reward as the
  # episode return), T12 (episode ids not advanced at an auto-reset), T13 (the next obs
  # recorded with the action), T14 (resumed envs start at run.episode + 1, joining the
  # unfinished episode). 2 envs, episodes of 3 steps (reward t: return 6), chunks of 2 steps.
  loop = _batch_loop(tmp_path)
  buf = replay.init(2, 16, 2, 1)
  run1, buf1, metrics, returns = loop.chunk(_run_state(), buf)
  assert (int(run1.agent_step), int(run1.episode), returns) == (4, 0, [])
  assert metrics == {'collect_plan_frac': 0.0}
  saved = jax.tree_util.tree_map(jnp.copy, buf1)     # (add_sequence donates the buffer)
  run2, buf2, _, returns = loop.chunk(run1, buf1)
  assert (int(run2.agent_step), int(run2.episode)) == (8, 2)
  assert returns == [6.0, 6.0]
  # Records [env, step]: obs t of the step the action was taken at; ids: the buffer held no
  # episode (-1), so the first is 1, the next one (after the auto-reset at step 3) 2.
  np.testing.assert_array_equal(buf2.obs[:, :4, 1], [[0, 1, 2, 0]] * 2)
  np.testing.assert_array_equal(buf2.episode[:, :4], [[1, 1, 1, 2]] * 2)
  np.testing.assert_array_equal(buf2.reward[:, :4], [[1, 2, 3, 1]] * 2)
  # Resumed after chunk 1 (no episode finished yet, run.episode 0; the buffer holds the
  # unfinished episode 1): fresh episodes get id 2, above every stored id, not 0 + 1 = 1.
  _, resumed, _, _ = _batch_loop(tmp_path).chunk(run1, saved)
  np.testing.assert_array_equal(resumed.episode[:, 2:4], [[2, 2]] * 2)
  np.testing.assert_array_equal(resumed.obs[:, 2:4, 1], [[0, 1]] * 2)


# ---- trainer: the shared loop (rows, checkpoints, export, time limit) ----------------------

class FakeCheckpointer:
  def __init__(self):
    self.saves = []

  def latest_step(self):
    return self.saves[-1][0] if self.saves else None

  def save(self, step, items, meta):
    self.saves.append((step, sorted(items), meta))


class StepLoop(trainer._Loop):
  """Every chunk: 10 agent steps, 1 episode, two finished episodes returning 1 and 3."""
  interrupt_at = None

  def chunk(self, run, buf):
    if int(run.agent_step) == self.interrupt_at:
      raise KeyboardInterrupt
    run = run.replace(agent_step=run.agent_step + 10, episode=run.episode + 1)
    return run, buf, {'total_loss': jnp.float32(0.5)}, [1.0, 3.0]


def _rows(workdir):
  with open(os.path.join(workdir, 'metrics.csv')) as f:
    return list(csv.DictReader(f))


@pytest.mark.parametrize('save_buffer', [True, False])
def test_loop_checkpoints_rows_and_export_by_hand(tmp_path, monkeypatch, save_buffer):
  # T8 (no periodic checkpoint), T9 (save_buffer ignored/inverted), T15 (episode_return summed).
  # steps 50, chunks of 10, checkpoint_every 20, action repeat 2: checkpoints when a chunk
  # crosses a multiple of 20 (at 20 and 40), then the final one at 50; rows every chunk.
  exported = []
  monkeypatch.setattr(checkpoint, 'export_agent',
                      lambda d, mcfg, params, pcfg, extra, storage_dtype: exported.append(extra)
                      or d)
  rc = builders.RunConfig(task='fake-task', steps=50, checkpoint_every=20, eval_every=0,
                          action_repeat=2, episode_length=10, save_buffer=save_buffer)
  ckpt = FakeCheckpointer()
  model = types.SimpleNamespace(cfg=None)
  result = StepLoop(rc, str(tmp_path), None, model, None, None, ckpt).run(_run_state(), 'BUF')
  items = ['buffer', 'run'] if save_buffer else ['run']
  assert ckpt.saves == [(s, items, dict(agent_step=s, env_step=2 * s, episode=s // 10))
                        for s in (20, 40, 50)]
  rows = _rows(str(tmp_path))
  assert [(int(r['agent_step']), int(r['env_step']), int(r['episode'])) for r in rows] == [
      (s, 2 * s, s // 10) for s in (10, 20, 30, 40, 50)]
  assert {float(r['episode_return']) for r in rows} == {2.0}     # the mean of 1 and 3
  assert {float(r['total_loss']) for r in rows} == {0.5}
  assert result['export_dir'] == os.path.join(str(tmp_path), 'export')
  assert not result['interrupted'] and not result['timed_out']
  assert exported == [dict(task='fake-task', backend='dmc', agent_step=50, env_step=100,
                           episode_length=10, action_repeat=2)]


def test_interrupted_loop_saves_once_and_does_not_export(tmp_path, monkeypatch):
  monkeypatch.setattr(checkpoint, 'export_agent', lambda *a, **k: pytest.fail('exported'))
  rc = builders.RunConfig(steps=50, checkpoint_every=20, eval_every=0)
  ckpt = FakeCheckpointer()
  loop = StepLoop(rc, str(tmp_path), None, None, None, None, ckpt)
  loop.interrupt_at = 30
  result = loop.run(_run_state(), 'BUF')
  assert result['interrupted'] and result['agent_step'] == 30
  assert [s for s, _, _ in ckpt.saves] == [20, 30]


def test_wall_minutes_are_minutes():
  # T7: the limit is in minutes (30 s < 1 min < 61 s); 0 means no limit.
  now = time.monotonic()
  assert not trainer._out_of_time(builders.RunConfig(wall_minutes=1.0), now - 30.0)
  assert trainer._out_of_time(builders.RunConfig(wall_minutes=1.0), now - 61.0)
  assert not trainer._out_of_time(builders.RunConfig(wall_minutes=0.0), now - 1e6)


# ---- builders / config ---------------------------------------------------------------------

class Built(Exception):
  pass


@pytest.fixture
def fakes(monkeypatch):
  monkeypatch.setattr(envs, 'REGISTRY', dict(envs.REGISTRY))

  def recorder(name):
    def factory(task, **options):
      raise Built(name, options)
    return factory
  envs.register('rec-host', recorder('rec-host'), host=True)
  envs.register('rec-traced', recorder('rec-traced'), traced=True)
  envs.register('rec-both', recorder('rec-both'), host=True, traced=True)


def _tiny(**overrides):
  cfg = builders.load_module(os.path.join(ROOT, 'experiments', 'tiny.py')).get_config()
  cfg.update(overrides)
  return cfg


def test_batched_follows_the_backend_capabilities(fakes):
  # B1: a traced-only backend always runs batched (also with one env); a backend with both
  # loops only with num_envs > 1; a host-only one never.
  batched = {(b, n): builders.RunConfig(backend=b, num_envs=n).batched
             for b in ('rec-host', 'rec-traced', 'rec-both') for n in (1, 4)}
  assert batched == {('rec-host', 1): False, ('rec-host', 4): False, ('rec-traced', 1): True,
                     ('rec-traced', 4): True, ('rec-both', 1): False, ('rec-both', 4): True}


def test_eval_env_gets_no_training_impl_and_its_own_seed(fakes):
  # B2: the training backend's impl is not passed to another (eval) backend; B3: the eval
  # environment is not seeded like the training one.
  rc = builders.run_config(_tiny(backend='rec-traced', impl='warp', eval_backend='rec-host', seed=7))
  with pytest.raises(Built) as built:
    builders.make_eval_env(rc)
  name, options = built.value.args
  assert name == 'rec-host' and options['impl'] == '' and options['seed'] != 7
  with pytest.raises(Built) as built:
    builders.make_env(rc, seed=7)
  assert built.value.args[1]['impl'] == 'warp'


def test_train_config_takes_the_planner_horizon_and_episode_discount():
  # B4: horizon 5 from the planner block; episode_length 50: (10 - 1) / 10 = 0.9, clipped to
  # the lower bound 0.95 (as the planner's discount).
  cfg = _tiny()
  cfg.planner.horizon = 5
  _, pcfg, tcfg = builders.make_agent_configs(cfg, 5, 1)
  assert (pcfg.horizon, tcfg.horizon) == (5, 5)
  assert tcfg.discount == pytest.approx(0.95) and pcfg.discount == pytest.approx(0.95)


def test_run_config_refuses_bad_values():
  # B5: any negative wall_minutes; B6: a bool is not an execution length; B8: action_repeat is
  # required (a silent default of 2 would halve or double the simulated time).
  with pytest.raises(ValueError, match='wall_minutes'):
    builders.run_config(_tiny(wall_minutes=-0.5))
  with pytest.raises(ValueError, match='collect_exec_len must be an integer'):
    builders.run_config(_tiny(collect_exec_len=True))
  cfg = _tiny()
  del cfg['action_repeat']
  with pytest.raises(ValueError, match=r"lacks \['action_repeat'\]"):
    builders.run_config(cfg)


def test_planner_and_model_config_rules():
  # C1: official heuristic iterations += 2 for action_dim >= 20 (20 included); C6: explicit
  # overrides win over the heuristics; C2: two Q members are subsampled, so num_q >= 2.
  assert [config.planner_config(a, 500).iterations for a in (19, 20)] == [6, 8]
  over = config.planner_config(21, 500, iterations=3, discount=0.9)
  assert (over.iterations, over.discount) == (3, 0.9)
  with pytest.raises(ValueError, match='num_q'):
    config.ModelConfig(obs_dim=3, action_dim=1, num_q=1)


# ---- convert -------------------------------------------------------------------------------

def _golden(name):
  g = np.load(os.path.join(DATA, name + '.npz'))
  sd = {k[3:]: g[k] for k in g.files if k.startswith('sd/')}
  sd.update({k[4:]: sd[str(g[k])] for k in g.files if k.startswith('dup/')})
  return sd


def test_stored_action_masks_are_checked():
  # V1: a mask that is not a prefix; V2: action_dims that contradict the stored masks (3, 2, 1).
  sd = _golden('tdmpc2_golden_mt')
  assert convert.convert_state_dict(sd)[0].action_dims == (3, 2, 1)
  bad = dict(sd, _action_masks=np.array([[1, 1, 1], [1, 0, 1], [1, 0, 0]], np.float32))
  with pytest.raises(convert.ConversionError, match='prefix mask'):
    convert.convert_state_dict(bad)
  with pytest.raises(convert.ConversionError, match=r'differ from the stored masks \(3, 2, 1\)'):
    convert.convert_state_dict(sd, action_dims=(3, 1, 1))


def test_episodic_false_drops_a_stored_termination_head():
  # V3/V4: files of add30b5..38b31a5 store a termination head even when not episodic; with
  # episodic=False the model has none and the params match its structure.
  sd = _golden('tdmpc2_golden_episodic')
  cfg, params, _ = convert.convert_state_dict(sd, episodic=False)
  assert not cfg.episodic and 'termination' not in params
  template = jax.eval_shape(world_model.WorldModel(cfg).init, jax.random.PRNGKey(0))
  assert jax.tree_util.tree_structure(template) == jax.tree_util.tree_structure(params)
  assert (cfg.log_std_min, cfg.log_std_max) == (-10.0, 2.0)   # V7: min + dif = -10 + 12
