"""Hand-worked checks of evaluation.py, sweep.py and distill.py found missing by a mutation
check (a wrong change that the rest of the suite let pass). Most tests replace the compiled
parts (run_episode, evaluate_mode, batched_episodes, training, export) by scripted fakes so that
the bookkeeping around them is checked exactly and without compiling; three compile a toy
model (identity encoder, tiny planner)."""
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import config
from spec_jax import correctors
from spec_jax import distill
from spec_jax import evaluation
from spec_jax import online as online_lib
from spec_jax import speculation as sp
from spec_jax import sweep
import toy

# Tiny planners for the toy model (3-dim obs / action / latent); baseline and speculative
# planners differ so that a swapped pair shows.
PC_BASE = config.PlannerConfig(horizon=2, iterations=1, num_samples=16, num_elites=2,
                               num_pi_trajs=0)
PC = config.PlannerConfig(horizon=3, iterations=1, num_samples=16, num_elites=2, num_pi_trajs=0)
TOY_EX = sp.Executor(toy.ToyModel(), PC, sp.SpecConfig(mode='spec', exec_len=2))


def _same_key(a, b):
  return np.array_equal(np.asarray(a), np.asarray(b))


# ---- evaluation.evaluate_mode: pairing, aggregation, latency statistics ----------------------

# Two scripted episodes. Latency by hand over all 10 steps (ms):
#   all      40 2 3 30 4 | 50 1 5 20 6 -> sorted 1 2 3 4 5 6 20 30 40 50
#   mean 161 / 10 = 16.1; median (5 + 6) / 2 = 5.5; max 50;
#   p99 (linear): position 0.99 * 9 = 8.91 -> 40 + 0.91 * (50 - 40) = 49.1
#   replanned steps 40 30 50 20 -> median (30 + 40) / 2 = 35
#   corrected steps 2 3 4 1 5 6 -> median (3 + 4) / 2 = 3.5; ratio 3.5 / 35 = 0.1
#   p99_to_plan = 49.1 / 35
_EPISODES = [
    dict(ret=10.0, planner_calls=4, corrections=6, fallbacks=1, nonfinite=1, adopted=2,
         deferred=0, ahead_calls=4, ready_offered=3, end_offered=2, end_adopted=1,
         step_ms=[40.0, 2.0, 3.0, 30.0, 4.0], replanned=[True, False, False, True, False]),
    dict(ret=4.0, planner_calls=2, corrections=8, fallbacks=3, nonfinite=2, adopted=1,
         deferred=2, ahead_calls=5, ready_offered=1, end_offered=1, end_adopted=1,
         step_ms=[50.0, 1.0, 5.0, 20.0, 6.0], replanned=[True, False, False, True, False]),
]


def test_evaluate_mode_pairs_episodes_and_aggregates_by_hand(monkeypatch):
  events, calls = [], []
  monkeypatch.setattr(evaluation, '_compile_programs', lambda *a: events.append('compile'))

  def fake_episode(ex, params, env, key, seed, tau, runtime, log_fn, online_state, task):
    events.append('episode')
    calls.append((key, seed, tau))
    ep = dict(_EPISODES[len(calls) - 1])
    return dict(ep, seed=seed, online_state=online_state, nonfinite_steps=[])

  monkeypatch.setattr(evaluation, 'run_episode', fake_episode)
  key = jax.random.PRNGKey(3)
  row = evaluation.evaluate_mode(TOY_EX, sp.ExecParams(toy.TOY_PARAMS), None, 0.5, 2, key,
                                 seed=7)
  # Everything is compiled before the first timed episode.
  assert events == ['compile', 'episode', 'episode']
  # Episode ep runs on seed + ep with step keys fold_in(key, ep): every mode gets the same pairs.
  assert [c[1] for c in calls] == [7, 8] and row['seeds'] == [7, 8]
  assert _same_key(calls[0][0], jax.random.fold_in(key, 0))
  assert _same_key(calls[1][0], jax.random.fold_in(key, 1))
  assert row['returns'] == [10.0, 4.0] and row['return_mean'] == 7.0
  # Per-episode means: calls (4 + 2) / 2, corrections (6 + 8) / 2, fallbacks (1 + 3) / 2, ...
  assert (row['planner_calls'], row['corrections'], row['fallbacks']) == (3.0, 7.0, 2.0)
  assert (row['adopted'], row['deferred'], row['ahead_calls']) == (1.5, 1.0, 4.5)
  assert row['nonfinite'] == 3.0                       # a total: 1 + 2 safe-action steps
  # ready_accept: adopted / offered = (2 + 1) / (3 + 1); end_accept: (1 + 1) / (2 + 1).
  assert row['ready_accept'] == pytest.approx(0.75)
  assert row['end_accept'] == pytest.approx(2 / 3)
  assert row['step_ms_mean'] == pytest.approx(16.1)
  assert row['step_ms_median'] == pytest.approx(5.5)
  assert row['step_ms_p99'] == pytest.approx(49.1)
  assert row['step_ms_max'] == pytest.approx(50.0)
  assert row['replan_ms_median'] == pytest.approx(35.0)
  assert row['correct_ms_median'] == pytest.approx(3.5)
  assert row['correct_to_replan_ratio'] == pytest.approx(0.1)
  assert row['p99_to_plan'] == pytest.approx(49.1 / 35.0)
  assert (row['exec_len'], row['horizon'], row['episodes'], row['tau']) == (2, 3, 2, 0.5)


def test_evaluate_grid_runs_every_point_on_the_same_seeds_and_keys(monkeypatch):
  # Baseline with the base planner, speculative points with the speculative planner; every
  # point gets the same key and first seed (paired episodes) and its own runtime.
  calls = []
  monkeypatch.setattr(evaluation, 'evaluate_mode',
                      lambda ex, params, env, tau, episodes, key, seed, log_fn=None,
                      tau_q=float('nan'), runtime=None, task=None:
                      calls.append(dict(ex=ex, tau=tau, tau_q=tau_q, episodes=episodes, key=key,
                                        seed=seed, runtime=runtime, task=task)) or {})
  cor = correctors.Corrector(correctors.CorrectorConfig('mlp', hidden=4), 3, 3)
  points = evaluation.grid([dict(modes=('spec',), exec_lens=(2,), taus=(0.5,), plan_ahead=True,
                                 ahead_lead=1),
                            dict(modes=('mlp',), exec_lens=(3,), taus=(0.25,), online=True)],
                           None)
  key = jax.random.PRNGKey(5)
  evaluation.evaluate_grid(toy.ToyModel(), toy.TOY_PARAMS, PC_BASE, PC, {'mlp': (cor, {})},
                           None, points, 4, key, 11, period_ms=5.0)
  assert [c['ex'].spec.mode for c in calls] == ['baseline', 'spec', 'mlp']
  assert [c['ex'].planner for c in calls] == [PC_BASE, PC, PC]
  assert [c['ex'].spec.effective_exec_len for c in calls] == [1, 2, 3]
  assert all(_same_key(c['key'], key) for c in calls)
  assert [c['seed'] for c in calls] == [11, 11, 11] and {c['episodes'] for c in calls} == {4}
  assert [c['tau'] for c in calls] == [float('inf'), 0.5, 0.25]
  assert [c['runtime'] for c in calls] == [
      evaluation.Runtime(False, 5.0, None, 0), evaluation.Runtime(True, 5.0, None, 1),
      evaluation.Runtime(False, 5.0, online_lib.OnlineConfig(), 0)]
  assert calls[2]['ex'].corrector is cor


class _SlowEnv(toy.FakeEnv):
  """Records its reset seeds and the time of every env.step; each step takes STEP_S."""
  STEP_S = 0.15

  def __init__(self, *a, **kw):
    super().__init__(*a, **kw)
    self.seeds, self.step_times = [], []

  def reset(self, seed=None):
    self.seeds.append(seed)
    self.step_times.append([])
    return super().reset(seed)

  def step(self, action):
    self.step_times[-1].append(time.perf_counter())
    time.sleep(self.STEP_S)
    return super().step(action)


def test_paced_episodes_seed_the_env_and_time_only_the_decision():
  # Period 250 ms, each env.step 150 ms, toy decisions ~1 ms: with the elapsed time subtracted
  # consecutive env.step calls are one period apart (250 ms; 400 ms if the whole period were
  # slept after the env step, 150 ms without pacing). The decision latency excludes the env
  # step: its median is well below 150 ms. (Not the max: the first timed step of a process
  # also compiles jax.random.split, a few hundred ms on a loaded machine.)
  env = _SlowEnv(np.sin(np.arange(9.0)).reshape(3, 3), 3)
  row = evaluation.evaluate_mode(TOY_EX, sp.ExecParams(toy.TOY_PARAMS), env, 1e9, 2,
                                 jax.random.PRNGKey(0), seed=7,
                                 runtime=evaluation.Runtime(period_ms=250.0))
  assert env.seeds == [7, 8]                           # each episode on its own seed
  assert row['period_ms'] == 250.0 and row['planner_calls'] == 2.0   # t = 0 and 2 (exec_len 2)
  assert row['step_ms_median'] < 1e3 * _SlowEnv.STEP_S, row['step_ms_median']
  gaps = [1e3 * (b - a) for times in env.step_times for a, b in zip(times, times[1:])]
  # (The median: after a slow step, here the first, the next gap is only the env step's.)
  assert len(gaps) == 4 and 235.0 < np.median(gaps) < 330.0, gaps


# ---- sweep: grid layout, keys, summaries, first bad step, Pareto front ----------------------

def _fake_stats(taus, keys):
  """EpisodeStats whose ret is the env's tau and planner_calls / corrections its key words."""
  z = jnp.zeros(taus.shape[0])
  return sweep.EpisodeStats(ret=taus, planner_calls=keys[..., 0].astype(jnp.float32),
                            corrections=keys[..., 1].astype(jnp.float32), fallbacks=z, steps=z,
                            nonfinite=z, first_bad_step=z, plan_evals=z)


def test_sweep_and_sweep_loop_lay_out_tau_then_seed_then_episode(monkeypatch):
  # keys[s, e] = (2 (2 s + e), 2 (2 s + e) + 1); taus (0.5, 2, 7): result [t, s, e] must carry
  # taus[t] and keys[s, e] for every t, s, e.
  taus = jnp.array([0.5, 2.0, 7.0])
  keys = jnp.arange(8, dtype=jnp.uint32).reshape(2, 2, 2)
  want_calls = np.array([[0, 2], [4, 6]], np.float32)
  monkeypatch.setattr(sweep, 'batched_episodes', lambda setup, params, t, k: _fake_stats(t, k))
  monkeypatch.setattr(sweep, '_single_episode',
                      lambda setup, params, t, k: jax.tree_util.tree_map(
                          lambda x: x[0], _fake_stats(jnp.reshape(t, (1,)), k[None])))
  for fn in (sweep.sweep, sweep.sweep_loop):
    stats = fn(None, None, taus, keys)
    assert stats.ret.shape == (3, 2, 2)
    np.testing.assert_array_equal(stats.ret, np.broadcast_to(np.array([0.5, 2.0, 7.0])[:, None, None],
                                                             (3, 2, 2)))
    np.testing.assert_array_equal(stats.planner_calls, np.broadcast_to(want_calls, (3, 2, 2)))
    np.testing.assert_array_equal(stats.corrections, np.broadcast_to(want_calls + 1, (3, 2, 2)))


def test_grid_keys_are_fold_in_of_seed_and_episode_and_all_distinct():
  keys = sweep.grid_keys([3, 5], 2)
  assert keys.shape == (2, 2, 2)
  for s, seed in enumerate([3, 5]):
    for e in range(2):
      assert _same_key(keys[s, e], jax.random.fold_in(jax.random.PRNGKey(seed), e))
  flat = {tuple(np.asarray(k).tolist()) for k in sweep.grid_keys([0, 1, 2], 3).reshape(-1, 2)}
  assert len(flat) == 9                     # no two (seed, episode) pairs share a key


def test_summarize_by_hand():
  # One tau, seeds x episodes = 2 x 3; flat env index = seed-major: s * 3 + e.
  f = lambda rows: jnp.asarray(np.array(rows, np.float32)[None])
  stats = sweep.EpisodeStats(
      ret=f([[1, 2, 3], [4, 5, 6]]), planner_calls=f([[4, 4, 2], [4, 3, 4]]),
      corrections=f([[5, 5, 2], [5, 1, 5]]), fallbacks=f([[1, 0, 1], [2, 2, 0]]),
      steps=f([[10, 10, 5], [10, 4, 10]]), nonfinite=f([[0, 0, 1], [0, 2, 0]]),
      first_bad_step=f([[-1, -1, 4], [-1, 7, -1]]), plan_evals=f([[0] * 3] * 2))
  (row,) = sweep.summarize(stats, [0.3], 3, 'spec', fail_below=2.5)
  assert row['returns'] == [1, 2, 3, 4, 5, 6] and row['episodes'] == 6
  assert row['nonfinite_envs'] == 'env2@step4 env4@step7'   # (s0, e2) -> 2, (s1, e1) -> 4
  assert row['nonfinite'] == 3.0                            # a total
  assert row['planner_calls'] == pytest.approx(21 / 6)
  assert row['corrections'] == pytest.approx(23 / 6) and row['fallbacks'] == 1.0
  # mean of fallbacks / steps: (0.1 + 0 + 0.2 + 0.2 + 0.5 + 0) / 6 = 1 / 6
  assert row['fallback_rate'] == pytest.approx(1 / 6)
  assert (row['return_median'], row['failed']) == (3.5, 2.0)


def test_pareto_front_drops_equal_returns_at_more_calls():
  rows = [dict(planner_calls=3, return_mean=1.0), dict(planner_calls=5, return_mean=1.0),
          dict(planner_calls=8, return_mean=2.0), dict(planner_calls=8, return_mean=2.0)]
  front = sweep.pareto_front(rows)
  assert [(r['planner_calls'], r['return_mean']) for r in front] == [(3, 1.0), (8, 2.0)]


class _BadObsEnv(toy.FakeJaxEnv):
  """Traced env: constant observation 0.3, reward 1, never done, but the observation at
  step 2 is NaN (a sensor glitch, not an explosion)."""

  def reset_one(self, key):
    return toy.FakeJaxState(obs=jnp.full((3,), 0.3), t=jnp.zeros((), jnp.int32),
                            done=jnp.zeros(()))

  def step_one(self, state, action):
    t = state.t + 1
    obs = jnp.where(t == 2, jnp.nan, jnp.full((3,), 0.3))
    return toy.FakeJaxState(obs=obs, t=t, done=state.done), jnp.ones(())


def test_sweep_reports_the_first_non_finite_step():
  # exec_len 2, tau inf: t0 replans, t1 corrects, t2 has a NaN observation (safe action, the
  # queue dropped), t3 replans: 2 plans, 1 correction, 1 safe step, first at step 2, return 4.
  setup = sweep.SweepSetup(_BadObsEnv(obs_dim=3, action_dim=3, episode_length=4), TOY_EX,
                           replanning='sequential')
  stats = sweep.sweep(setup, sp.ExecParams(toy.TOY_PARAMS), jnp.array([jnp.inf]),
                      sweep.grid_keys([0], 1))
  assert np.asarray(stats.first_bad_step).tolist() == [[[2]]]
  assert (int(stats.planner_calls[0, 0, 0]), int(stats.corrections[0, 0, 0]),
          int(stats.nonfinite[0, 0, 0]), int(stats.steps[0, 0, 0])) == (2, 1, 1, 4)
  assert float(stats.ret[0, 0, 0]) == 4.0
  (row,) = sweep.summarize(stats, [jnp.inf], 2, 'spec')
  assert row['nonfinite_envs'] == 'env0@step2'


# ---- distill: collection, split, training bookkeeping, stored mismatch distribution --------

class _RecordingEnv(toy.FakeEnv):
  """Keeps the actions of every episode (FakeEnv keeps the last episode's)."""

  def __init__(self, *a, **kw):
    super().__init__(*a, **kw)
    self.episodes = []

  def reset(self, seed=None):
    obs = super().reset(seed)
    self.episodes.append(self.actions)
    return obs


def test_collect_executes_the_teacher_only_while_speculating():
  # Horizon 3: per 5-step episode t0 and t3 replan, t1, t2, t4 speculate (k = 1, 2, 1).
  # teacher_prob 1: every speculative step executes the teacher's action (the label), and a
  # replan step executes the executor's own new plan, which is the plan sp.step makes with the
  # collection's key schedule (step_key from split(key); spec_key = split(step_key, 3)[0]).
  obs = np.sin(np.arange(15.0)).reshape(5, 3).astype(np.float32)
  env = _RecordingEnv(obs, 3)
  data, stats = distill.collect(toy.ToyModel(), toy.TOY_PARAMS, PC, env, 2,
                                jax.random.PRNGKey(0), history=2, teacher_prob=1.0,
                                first_episode=5)
  assert stats['tuples'] == 6
  assert np.asarray(data.episode).tolist() == [5, 5, 5, 6, 6, 6]
  assert np.asarray(data.k).tolist() == [1, 2, 1] * 2
  acts = np.stack([np.stack(a) for a in env.episodes])          # [2 episodes, 5 steps, 3]
  np.testing.assert_allclose(data.a_teacher, acts[:, [1, 2, 4]].reshape(6, 3), atol=1e-6)
  ex = sp.Executor(toy.ToyModel(), PC, sp.SpecConfig(mode='spec', exec_len=3, history=2))
  _, step_key = jax.random.split(jax.random.PRNGKey(0))
  a0, _, info = sp.step(ex, sp.ExecParams(toy.TOY_PARAMS), sp.init_state(ex), jnp.asarray(obs[0]),
                        jax.random.split(step_key, 3)[0], jnp.inf, True)
  assert bool(info.replanned)
  np.testing.assert_allclose(acts[0, 0], a0, atol=1e-5)


def _hand_dataset(episodes, Z=3, A=1, K=2):
  """N = len(episodes) tuples, d = 0, 1, 2, ... (to identify them); numpy leaves (the split
  indexes them on the host, nothing to compile)."""
  n = len(episodes)
  f32 = lambda shape, v=0.0: np.full(shape, v, np.float32)
  return distill.Dataset(z_real=f32((n, Z)), z_hat=f32((n, Z)), a_spec=f32((n, A)),
                         a_teacher=f32((n, A), 0.5), d=np.arange(n, dtype=np.float32),
                         history=f32((n, K, 3 * Z + A)), valid=np.ones((n, K), bool),
                         k=np.ones(n, np.int32), episode=np.asarray(episodes, np.int32))


EPISODES = [0, 1, 1, 2, 2, 2, 3, 3, 3, 3]   # 4 episodes of 1, 2, 3, 4 tuples


def test_split_holds_out_whole_episodes_drawn_by_the_key():
  data = _hand_dataset(EPISODES)
  held = []
  for seed in range(8):
    train, test = distill.split(data, 0.25, jax.random.PRNGKey(seed))
    # round(0.25 * 4) = 1 whole episode held out, the other 3 trained on.
    (ep,) = set(np.asarray(test.episode).tolist())
    assert test.d.shape[0] == EPISODES.count(ep)
    assert sorted(set(np.asarray(train.episode).tolist())) == sorted({0, 1, 2, 3} - {ep})
    assert sorted(np.asarray(train.d).tolist() + np.asarray(test.d).tolist()) == list(range(10))
    held.append(ep)
  assert len(set(held)) > 1                  # the key draws which episode is held out
  _, test = distill.split(data, 0.5, jax.random.PRNGKey(0))
  assert len(set(np.asarray(test.episode).tolist())) == 2


class _ShiftCorrector:
  """a_corr = a_spec + params (no clipping): the loss is hand-computable. A scalar parameter,
  initialised to 0."""

  def init(self, key):
    return jnp.zeros(())

  def correct(self, params, history, valid, a_spec):
    return a_spec + params


def test_train_reports_the_train_and_held_out_sizes(monkeypatch):
  data = _hand_dataset(EPISODES)
  monkeypatch.setattr(distill, '_train_epoch', lambda c, params, opt, *a: (params, opt, 0.0, 0.0))
  monkeypatch.setattr(distill, 'evaluate',
                      lambda c, p, d: dict(mse_corrected=1.0, mse_uncorrected=2.0))
  key = jax.random.PRNGKey(4)
  _, metrics = distill.train(_ShiftCorrector(), data, key, steps=100, holdout=0.25, epoch=100)
  _, test = distill.train_test_split(data, 0.25, key)
  (ep,) = set(np.asarray(test.episode).tolist())
  assert metrics['test_size'] == EPISODES.count(ep)
  assert metrics['train_size'] == 10 - EPISODES.count(ep)


def test_loss_weights_the_regulariser_by_lam():
  # a_spec (0.2, -0.4), a_teacher 0.5, shift 0.5 -> a_corr (0.7, 0.1):
  # mse = (0.2^2 + 0.4^2) / 2 = 0.1; reg = 0.5^2 = 0.25; loss = 0.1 + 0.1 * 0.25 = 0.125.
  batch = _hand_dataset([0, 0], A=1)._replace(a_spec=np.array([[0.2], [-0.4]], np.float32))
  loss, mse = distill.loss_fn(jnp.float32(0.5), _ShiftCorrector(), batch, 0.1)
  assert float(mse) == pytest.approx(0.1, rel=1e-5)
  assert float(loss) == pytest.approx(0.125, rel=1e-5)


def test_distill_job_stores_the_mismatch_distribution_of_the_new_data(tmp_path, monkeypatch):
  # The export already holds a distribution (0, 0.02, ..., 2); the job retrains 'mlp' on a
  # saved dataset whose mismatch distances are 0, 0.01, ..., 1 (shuffled; action errors all
  # 0.5): the stored 101 percentiles become exactly 0, 0.01, ..., 1. With nothing retrained
  # (kinds = ()) the export's distribution, which its correctors were trained with, is kept.
  # Loading, training and exporting are replaced by fakes: only the job's bookkeeping runs.
  import ml_collections
  from spec_jax import checkpoint
  from spec_jax import envs
  old = list(np.linspace(0.0, 2.0, 101))
  meta = dict(extra=dict(task='cartpole-swingup', action_repeat=2, episode_length=12,
                         mismatch_quantiles=old))
  monkeypatch.setattr(checkpoint, 'load_with_correctors',
                      lambda path: (toy.ToyModel(), toy.TOY_PARAMS, PC, {}, meta))
  exported, trained = [], []
  monkeypatch.setattr(checkpoint, 'export_with_correctors',
                      lambda out, model, params, pcfg, cors, extra, **kw:
                      exported.append((sorted(cors), extra)) or out)
  monkeypatch.setattr(envs, 'make', lambda *a, **kw: None)
  monkeypatch.setattr(distill, 'train', lambda cor, *a, **kw:
                      trained.append(cor.cfg.kind) or (None, dict(mse_corrected=0.0)))
  d = np.random.default_rng(0).permutation(np.linspace(0.0, 1.0, 101)).astype(np.float32)
  data = _hand_dataset(np.arange(101) % 4)._replace(d=d)
  path = str(tmp_path / 'dataset.npz')
  np.savez(path, **data._asdict())
  cfg = dict(seed=0, episodes=4, teacher_prob=0.5, history=2, kinds=('mlp',), hidden=8, steps=1,
             batch_size=4, lr=3e-4, lam=0.1, holdout=0.5, dataset=path)
  distill.run(ml_collections.ConfigDict(cfg), 'export', str(tmp_path / 'a'))
  (cors, extra), = exported
  assert trained == ['mlp'] and cors == ['mlp']
  np.testing.assert_allclose(extra['mismatch_quantiles'], np.linspace(0.0, 1.0, 101), atol=1e-6)
  assert extra['distill']['tuples'] == 101
  distill.run(ml_collections.ConfigDict(dict(cfg, kinds=())), 'export', str(tmp_path / 'b'))
  assert exported[1][1]['mismatch_quantiles'] == old and trained == ['mlp']
