"""Online TD-MPC2 training: seed steps, planning during collection, periodic evaluation,
progress output, a metrics CSV, Orbax checkpoints with resume, and a final export.

The Python loop only collects, logs, evaluates and checkpoints; updates run as jitted epochs
(``agent.update_epoch``, a lax.scan) of ``updates_per_step`` x (steps just collected) updates
after each collected chunk (an episode on a host backend such as dm_control, ``chunk_steps``
vector steps of ``num_envs`` environments on a traced backend such as MJX or Brax). The run
schedule is a typed ``builders.RunConfig`` built once from the experiment config.
Checkpoints are written at chunk boundaries, so a resumed run continues from the last
completed chunk with its replay data, optimiser state, planner warm start and counters.
"""
import csv
import functools
import os
import signal
import time
from typing import Any, Dict, Optional

from absl import logging
import flax
import jax
import jax.numpy as jnp
import numpy as np

from spec_jax import agent
from spec_jax import builders
from spec_jax import checkpoint
from spec_jax import planner
from spec_jax import replay
from spec_jax import speculation
from spec_jax.envs import batch


@flax.struct.dataclass
class RunState:
  """Everything a resumed run needs besides the replay buffer."""
  train: agent.TrainState
  planner: planner.PlannerState
  key: jax.Array
  agent_step: jax.Array    # agent steps collected (all envs); env steps = this x action_repeat
  episode: jax.Array       # episodes completed
  pretrained: jax.Array    # bool: seed-data pretraining done


SAFE_ACTION = 0.0  # sent instead of a non-finite action (as speculation.SAFE_ACTION)

CSV_COLUMNS = ('agent_step', 'env_step', 'episode', 'wall_s', 'episode_return', 'eval_return',
               'eval_return_std', 'total_loss', 'consistency_loss', 'reward_loss', 'value_loss',
               'pi_loss', 'pi_entropy', 'pi_scale', 'grad_norm', 'pi_grad_norm',
               'collect_plan_frac')


class MetricsWriter:
  """Appends rows to a CSV with fixed ``columns`` (blank where a row lacks a value)."""

  def __init__(self, path: str, columns=CSV_COLUMNS):
    self.path, self.columns = path, list(columns)

  def _migrate(self) -> None:
    """Rewrites a file written with other columns (a run resumed across versions) into
    ``columns``. Files from before agent/env step units named agent steps ``env_step``."""
    with open(self.path, newline='') as f:
      rows = list(csv.DictReader(f))
      header = rows[0].keys() if rows else []
    if list(header) == self.columns:
      return
    if 'agent_step' not in header:
      for r in rows:
        r['agent_step'], r['env_step'] = r.get('env_step', ''), ''
    backup, n = self.path + '.old', 1
    while os.path.exists(backup):   # an earlier migration's backup is kept too
      backup, n = f'{self.path}.old{n}', n + 1
    os.replace(self.path, backup)
    with open(self.path, 'w', newline='') as f:
      writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction='ignore')
      writer.writeheader()
      writer.writerows(rows)
    logging.warning('metrics CSV %s had other columns; migrated (original kept as %s)',
                    self.path, backup)

  def write(self, row: Dict[str, Any]) -> None:
    new = not os.path.exists(self.path)
    if not new and not getattr(self, '_checked', False):
      self._migrate()
    self._checked = True
    with open(self.path, 'a', newline='') as f:
      writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction='ignore')
      if new:
        writer.writeheader()
      writer.writerow({k: (float(v) if hasattr(v, 'dtype') else v) for k, v in row.items()})


def evaluate(model, params, planner_cfg, env, num_episodes: int, key: jax.Array) -> Dict[str, float]:
  """Mean/std return of ``num_episodes`` episodes of the host ``env`` (reset/step, see
  ``spec_jax.envs``) planning in eval mode. Returns {'eval_return', 'eval_return_std'}."""
  returns = []
  for ep in range(num_episodes):
    obs, done, ret, t0 = env.reset(), False, 0.0, True
    state = planner.init_state(planner_cfg, model.cfg.action_dim)
    while not done:
      key, plan_key = jax.random.split(key)
      res, state = planner.plan(model, params, planner_cfg, state, jnp.asarray(obs), plan_key,
                                t0, eval_mode=True)
      obs, reward, done, _ = env.step(np.asarray(res.action))
      ret, t0 = ret + reward, False
    returns.append(ret)
  return dict(eval_return=float(np.mean(returns)), eval_return_std=float(np.std(returns)))


def _out_of_time(rc: builders.RunConfig, start: float) -> bool:
  """True once this process's training loop has run ``rc.wall_minutes`` (0: no limit)
  since ``start`` (time.monotonic, the progress clock). Checked after each chunk (an episode on a host
  backend, ``chunk_steps`` vector steps on a batched one), so a stop overshoots by up to one chunk plus its
  evaluation, and the final checkpoint and export come on top: leave that margin."""
  limit = float(rc.wall_minutes or 0)
  return limit > 0 and time.monotonic() - start >= 60.0 * limit


class _Progress:

  def __init__(self, total: int, start: int):
    self.total, self.start, self.t0 = total, start, time.monotonic()

  def line(self, step: int, extra: str) -> str:
    elapsed = time.monotonic() - self.t0
    sps = (step - self.start) / max(elapsed, 1e-9)
    eta = (self.total - step) / max(sps, 1e-9)
    return (f'agent step {step}/{self.total} ({100.0 * step / self.total:.1f}%) | {extra} | '
            f'{sps:.1f} agent steps/s | elapsed {elapsed / 60:.1f} min | ETA {eta / 60:.1f} min')


def _init_run(model, train_cfg, planner_cfg, cfg: builders.RunConfig):
  num_envs = cfg.num_envs if cfg.batched else 1   # the host loop runs one environment
  key = jax.random.PRNGKey(cfg.seed)
  init_key, key = jax.random.split(key)
  pstate = planner.init_state(planner_cfg, model.cfg.action_dim)
  if cfg.batched:   # the batched loop's plan_batch needs the env axis even for one env
    pstate = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (num_envs,) + x.shape), pstate)
  run = RunState(train=agent.init_train_state(model, train_cfg, init_key), planner=pstate, key=key,
                 agent_step=jnp.zeros((), jnp.int32), episode=jnp.zeros((), jnp.int32),
                 pretrained=jnp.zeros((), bool))
  capacity = max(min(cfg.buffer_size, cfg.steps) // num_envs, 2 * cfg.episode_length)
  buf = replay.init(num_envs, capacity, model.cfg.obs_dim, model.cfg.action_dim)
  return run, buf


def _maybe_restore(ckpt, run, buf):
  if ckpt.latest_step() is None:
    return run, buf, False
  saved = ckpt.saved_shapes('buffer')
  if saved and saved['obs'] != tuple(buf.obs.shape):
    # The replay capacity follows min(buffer_size, steps): a run resumed with another ``steps``
    # (shortened or extended) keeps the capacity it was started with.
    E, C = saved['obs'][:2]
    logging.warning('keeping the checkpoint\'s replay capacity %d per env (the config implies %d)',
                    C, buf.capacity)
    buf = replay.init(E, C, buf.obs.shape[-1], buf.action.shape[-1])
  items, meta = ckpt.restore({'run': run, 'buffer': buf})
  if items['buffer'] is None:
    logging.warning('checkpoint has no replay buffer (save_buffer=False): refilling from scratch')
    items['buffer'] = buf
  logging.info('resumed from %s at agent step %d', ckpt.directory, int(items['run'].agent_step))
  return items['run'], items['buffer'], True


def epoch_sizes(num_updates: int, chunk: int):
  """Splits ``num_updates`` into jitted epochs of ``chunk`` plus one remainder epoch, so
  exactly ``num_updates`` updates run (e.g. 250 with chunk 500 -> [250]; 2500 -> 4 x 500 + 500;
  1100 with chunk 500 -> [500, 500, 100])."""
  if num_updates < 0 or chunk < 1:
    raise ValueError(f'need num_updates >= 0 and chunk >= 1, got {num_updates}, {chunk}')
  sizes = [chunk] * (num_updates // chunk)
  if num_updates % chunk:
    sizes.append(num_updates % chunk)
  return sizes


UPDATE_LOG_SECONDS = 30.0   # a long update phase (seed-data pretraining) logs this often
_clock = time.monotonic     # the update phase's clock (a test scripts it)


def _updates(model, train_cfg, run, buf, num_updates: int, chunk: int):
  """Runs exactly ``num_updates`` updates as jitted epochs (``epoch_sizes``); full epochs
  share one compile, a remainder epoch compiles once per distinct size. A phase longer than
  ``UPDATE_LOG_SECONDS`` (seed-data pretraining) logs its progress about that often; the rate
  and ETA leave out the first epoch, which includes the compile.

  Args:
    run: the RunState (its ``train`` state and ``key`` advance).
    buf: the replay buffer sampled from.
    num_updates: how many updates; chunk: updates per jitted epoch.
  Returns:
    (run with the updated train state and key, the last epoch's metrics or None).
  """
  metrics = None
  train, key = run.train, run.key
  last = _clock()
  done, rate_from = 0, None    # (time, updates done) after the first (compiling) epoch
  for size in epoch_sizes(num_updates, chunk):
    key, epoch_key = jax.random.split(key)
    train, metrics = agent.update_epoch(model, train_cfg, train, buf, epoch_key, size)
    done += size
    jax.block_until_ready(metrics)   # epochs are long: waiting costs nothing, times are real
    now = _clock()
    rate_from = rate_from or (now, done)
    if now - last >= UPDATE_LOG_SECONDS and done < num_updates:
      last = now
      _log_update_progress(done, num_updates, now, rate_from)
  return run.replace(train=train, key=key), metrics


def _log_update_progress(done: int, total: int, now: float, rate_from) -> None:
  t_ref, done_ref = rate_from
  if done == done_ref:
    logging.info('updates %d/%d | first epoch (includes the compile)', done, total)
    return
  rate = (done - done_ref) / max(now - t_ref, 1e-9)
  logging.info('updates %d/%d | %.1f updates/s | ETA %.1f min', done, total, rate,
               (total - done) / rate / 60)


def train(cfg, workdir: str) -> Dict[str, Any]:
  """Trains the agent described by ``cfg`` (see experiments/), writing into ``workdir``.

  Args:
    cfg: experiment config (ConfigDict): the run schedule (typed once into a
      ``builders.RunConfig``) plus the model / planner / train blocks.
    workdir: output directory (checkpoints/, metrics.csv, export/).
  Returns:
    The last logged metrics (dict). Resumes automatically from ``workdir/checkpoints``.
  """
  rc = builders.run_config(cfg)
  os.makedirs(workdir, exist_ok=True)
  env = builders.make_env(rc, seed=rc.seed)
  model, planner_cfg, train_cfg = builders.make_agent_configs(cfg, env.spec.obs_dim,
                                                              env.spec.action_dim)
  if rc.collect_exec_len > planner_cfg.horizon:   # before any checkpoint is read
    raise ValueError(f'collect_exec_len ({rc.collect_exec_len}) cannot exceed the planner '
                     f'horizon ({planner_cfg.horizon})')
  run, buf = _init_run(model, train_cfg, planner_cfg, rc)
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), rc.keep)
  try:
    run, buf, resumed = _maybe_restore(ckpt, run, buf)
    loop = _BatchLoop if rc.batched else _HostLoop
    result = loop(rc, workdir, env, model, planner_cfg, train_cfg, ckpt).run(run, buf)
  finally:
    ckpt.close()
  return dict(result, resumed=resumed)


class _Loop:
  """Shared bookkeeping: logging, evaluation, checkpoints, interruption, export."""

  def __init__(self, rc: builders.RunConfig, workdir, env, model, planner_cfg, train_cfg, ckpt):
    self.rc, self.workdir, self.env, self.model = rc, workdir, env, model
    self.planner_cfg, self.train_cfg, self.ckpt = planner_cfg, train_cfg, ckpt
    self.writer = MetricsWriter(os.path.join(workdir, 'metrics.csv'))
    self.eval_env = None
    self.last: Dict[str, Any] = {}

  def units(self, run) -> Dict[str, int]:
    """Agent steps (decisions) and env steps (simulator control steps = agent steps x action
    repeat). The official TD-MPC2 trainer counts one step per call of its action-repeated
    (x2) DMControl wrapper, so the ``step`` of published TD-MPC2 curves is our AGENT step."""
    agent_step = int(run.agent_step)
    return dict(agent_step=agent_step, env_step=agent_step * int(self.rc.action_repeat))

  def save(self, run, buf) -> None:
    if self.ckpt.latest_step() == int(run.agent_step):
      return
    items = {'run': run}
    if self.rc.save_buffer:
      items['buffer'] = buf
    self.ckpt.save(int(run.agent_step), items, dict(self.units(run), episode=int(run.episode)))
    logging.info('checkpoint saved at agent step %d (%d env steps)', int(run.agent_step),
                 self.units(run)['env_step'])

  def export(self, run) -> str:
    path = checkpoint.export_agent(
        os.path.join(self.workdir, 'export'), self.model.cfg, run.train.params, self.planner_cfg,
        extra=dict(task=self.rc.task, backend=self.rc.backend, **self.units(run),
                   episode_length=self.rc.episode_length,
                   action_repeat=self.rc.action_repeat),
        storage_dtype=self.rc.export_dtype)
    logging.info('exported agent to %s', path)
    return path

  def maybe_eval(self, run, prev_step: int) -> Optional[Dict[str, float]]:
    every = self.rc.eval_every
    if every <= 0 or int(run.agent_step) // every == prev_step // every:
      return None
    if self.eval_env is None:  # the training backend's host env, else eval_backend's
      self.eval_env, note = builders.make_eval_env(self.rc)
      logging.info(note)
    key = jax.random.fold_in(jax.random.PRNGKey(self.rc.seed + 1), int(run.agent_step))
    return evaluate(self.model, run.train.params, self.planner_cfg, self.eval_env,
                    self.rc.eval_episodes, key)

  def after_chunk(self, run, buf, prev_step: int, train_metrics, returns, progress) -> None:
    row = dict(**self.units(run), episode=int(run.episode),
               wall_s=round(time.monotonic() - progress.t0, 2))
    if returns:
      row['episode_return'] = float(np.mean(returns))
    if train_metrics is not None:
      row.update({k: float(v) for k, v in train_metrics.items()})
    ev = self.maybe_eval(run, prev_step)
    if ev:
      row.update(ev)
    self.writer.write(row)
    self.last = row
    extra = ' | '.join(f'{k} {row[k]:.1f}' for k in ('episode_return', 'eval_return') if k in row)
    if 'collect_plan_frac' in row:   # batched collection: plans per agent step in this chunk
      extra += f' | plans/agent step {row["collect_plan_frac"]:.2f}'
    logging.info(progress.line(int(run.agent_step),
                               f'env steps {row["env_step"]} | episode {int(run.episode)} | {extra}'))
    if int(run.agent_step) // self.rc.checkpoint_every != prev_step // self.rc.checkpoint_every:
      self.save(run, buf)

  def run(self, run, buf):
    progress = _Progress(self.rc.steps, int(run.agent_step))
    timed_out = False
    interrupted = {'flag': False}
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: interrupted.__setitem__('flag', True))
    try:
      while int(run.agent_step) < self.rc.steps and not interrupted['flag']:
        prev_step = int(run.agent_step)
        run, buf, train_metrics, returns = self.chunk(run, buf)
        self.after_chunk(run, buf, prev_step, train_metrics, returns, progress)
        if _out_of_time(self.rc, progress.t0):
          timed_out = True
          logging.warning('wall_minutes=%s reached at agent step %d: checkpoint and export; '
                          'rerun to continue', self.rc.wall_minutes, int(run.agent_step))
          break
    except KeyboardInterrupt:
      interrupted['flag'] = True
    finally:
      signal.signal(signal.SIGTERM, previous)
    self.save(run, buf)  # state as of the last completed chunk: nothing collected is lost
    if interrupted['flag']:
      logging.warning('interrupted: saved a checkpoint at agent step %d; rerun to resume',
                      int(run.agent_step))
      return dict(self.last, interrupted=True)
    return dict(self.last, export_dir=self.export(run), interrupted=False, timed_out=timed_out)

  def pretrain_and_update(self, run, buf, new_steps: int):
    cfg = self.rc
    if int(run.agent_step) < cfg.seed_steps:
      return run, None
    n = int(round(new_steps * cfg.updates_per_step))
    if not bool(run.pretrained):
      n = max(n, cfg.seed_steps)  # pretraining on the seed data, as in TD-MPC2
      logging.info('pretraining on seed data: %d updates', n)
      run = run.replace(pretrained=jnp.ones((), bool))
    return _updates(self.model, self.train_cfg, run, buf, n, cfg.update_chunk)


class _HostLoop(_Loop):
  """One environment of a host backend (dm_control); a chunk is one episode."""

  def chunk(self, run, buf):
    cfg, env = self.rc, self.env
    # Per-episode seeds make a resumed run replay exactly what an uninterrupted run would.
    obs, done, t0 = env.reset(seed=cfg.seed * 1_000_003 + int(run.episode)), False, True
    rng = np.random.default_rng([cfg.seed, int(run.episode)])
    key, pstate = run.key, run.planner
    records = {'obs': [], 'action': [], 'reward': []}
    step = int(run.agent_step)
    while not done:
      if step < cfg.seed_steps:
        action = rng.uniform(-1, 1, env.spec.action_dim).astype(np.float32)
      else:
        key, plan_key = jax.random.split(key)
        res, pstate = planner.plan(self.model, run.train.params, self.planner_cfg, pstate,
                                   jnp.asarray(obs), plan_key, t0)
        action = np.asarray(res.action)
      if not (np.all(np.isfinite(obs)) and np.all(np.isfinite(action))):
        logging.warning('non-finite observation or action at agent step %d (episode %d): '
                        'safe action sent', step, int(run.episode))
        action = np.full(env.spec.action_dim, SAFE_ACTION, np.float32)
      next_obs, reward, done, _ = env.step(action)
      records['obs'].append(obs), records['action'].append(action), records['reward'].append(reward)
      obs, t0, step = next_obs, False, step + 1
    T = len(records['reward'])
    buf = replay.add_sequence(
        buf, jnp.asarray(np.stack(records['obs']))[:, None],
        jnp.asarray(np.stack(records['action']), jnp.float32)[:, None],
        jnp.asarray(records['reward'], jnp.float32)[:, None],
        jnp.full((T, 1), int(run.episode), jnp.int32))
    run = run.replace(key=key, planner=pstate, agent_step=run.agent_step + T, episode=run.episode + 1)
    run, metrics = self.pretrain_and_update(run, buf, T)
    return run, buf, metrics, [float(np.sum(records['reward']))]


def first_episode_id(buf: replay.ReplayBuffer, run: RunState) -> int:
  """Episode id for environments (re)started by this process: above every id already in the
  buffer, including the unfinished episodes of an interrupted run, so that no replay window
  joins an old partial episode to a new one."""
  return max(int(buf.episode.max()), int(run.episode)) + 1


def collect_executor(model, planner_cfg, rc: builders.RunConfig):
  """The speculative executor of batched collection (``rc.collect_exec_len`` > 1: mode 'spec',
  no corrector; exploration noise on the first action of each plan, as in training, while
  the queued actions that follow run without noise), or None (a fresh plan every step)."""
  if rc.collect_exec_len <= 1:
    return None
  return speculation.Executor(model, planner_cfg, speculation.SpecConfig(
      mode='spec', exec_len=rc.collect_exec_len, eval_mode=False))


class _BatchLoop(_Loop):
  """``num_envs`` environments of a traced backend (MJX, Brax) in one jit, batched and
  auto-reset by ``envs.batch``; a chunk is ``chunk_steps`` vector steps. With
  ``collect_exec_len`` > 1 the environments collect speculatively (``step_batch_compact``):
  its SpecState starts afresh with the episodes (on resume too), like the env state."""

  def __init__(self, *args):
    super().__init__(*args)
    self.num_envs = self.rc.num_envs
    self.env_state = None
    self.episode_ids = None
    self.executor = collect_executor(self.model, self.planner_cfg, self.rc)
    self.spec_state = None

  def chunk(self, run, buf):
    if self.env_state is None:  # fresh episodes; ids above every id already in the buffer
      self.env_state = batch.reset(self.env, jax.random.fold_in(run.key, int(run.agent_step)),
                                   self.num_envs)
      self.episode_ids = jnp.full((self.num_envs,), first_episode_id(buf, run), jnp.int32)
      if self.executor is not None:
        self.spec_state = speculation.batch_state(speculation.init_state(self.executor),
                                                  self.num_envs)
    random_phase = int(run.agent_step) < self.rc.seed_steps
    key, collect_key = jax.random.split(run.key)
    policy_state = run.planner if self.executor is None else self.spec_state
    (self.env_state, policy_state, self.episode_ids), recs = _mjx_collect(
        self.env, self.model, self.planner_cfg, run.train.params, self.env_state, policy_state,
        self.episode_ids, collect_key, self.rc.chunk_steps, random_phase, self.executor,
        jnp.float32(self.rc.collect_tau))
    if self.executor is None:
      pstate = policy_state
    else:
      self.spec_state, pstate = policy_state, run.planner
    buf = replay.add_sequence(buf, recs['obs'], recs['action'], recs['reward'], recs['episode'])
    for t, e in zip(*np.nonzero(np.asarray(recs['nonfinite']))):
      logging.warning('non-finite observation or action: env %d at agent step %d (safe action '
                      'sent)', e, int(run.agent_step) + int(t) * self.num_envs)
    new_steps = self.rc.chunk_steps * self.num_envs
    done = np.asarray(recs['done'])
    returns = np.asarray(recs['final_return'])[done].tolist()
    run = run.replace(key=key, planner=pstate, agent_step=run.agent_step + new_steps,
                      episode=run.episode + int(done.sum()))
    run, metrics = self.pretrain_and_update(run, buf, new_steps)
    metrics = dict(metrics or {}, collect_plan_frac=float(np.mean(np.asarray(recs['planned']))))
    return run, buf, metrics, returns


def _policy_actions(model, planner_cfg, params, ex, tau, policy_state, obs, t0, step_key):
  """Collection actions [B, A] of the planning phase, which envs planned [B] and the latent
  mismatch [B] (0 without speculation): a fresh ``plan_batch`` for every env (ex None;
  policy_state a batched PlannerState), or one ``step_batch_compact`` (policy_state a batched
  SpecState; per-env keys split from step_key, as plan_batch splits them, so tau = 0
  reproduces plan_batch's plans)."""
  if ex is None:
    res, policy_state = planner.plan_batch(model, params, planner_cfg, policy_state, obs,
                                           step_key, t0)
    return res.action, policy_state, jnp.ones(t0.shape, bool), jnp.zeros(t0.shape)
  keys = jax.random.split(step_key, obs.shape[0])
  action, policy_state, info = speculation.step_batch_compact(
      ex, speculation.ExecParams(params), policy_state, obs, keys, tau, t0)
  return action, policy_state, info.replanned, info.d


def _collect_body(env, model, planner_cfg, params, random_phase, ex, tau, carry, step_key):
  env_state, policy_state, ep_ids = carry
  B, A = env_state.obs.shape[0], model.cfg.action_dim
  if random_phase:
    action = jax.random.uniform(step_key, (B, A), minval=-1.0, maxval=1.0)
    planned, mismatch = jnp.zeros((B,), bool), jnp.zeros((B,))
  else:
    action, policy_state, planned, mismatch = _policy_actions(
        model, planner_cfg, params, ex, tau, policy_state, env_state.obs, env_state.t == 0,
        step_key)
  bad = ~(jnp.all(jnp.isfinite(env_state.obs), -1) & jnp.all(jnp.isfinite(action), -1))
  action = jnp.where(bad[:, None], SAFE_ACTION, action)   # never a NaN action
  out = batch.step_traced(env, env_state, action)
  rec = dict(obs=env_state.obs, action=action, reward=out.reward, episode=ep_ids, done=out.done,
             final_return=out.final_return, nonfinite=bad, planned=planned, mismatch=mismatch)
  return (out.state, policy_state, ep_ids + out.done.astype(jnp.int32)), rec


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 8, 9, 10))
def _mjx_collect(env, model, planner_cfg, params, env_state, policy_state, episode_ids, key,
                 steps, random_phase, ex, tau):
  """``steps`` vector steps of collection in one scan. policy_state: a batched PlannerState
  (ex None: plan every step) or a batched SpecState (ex: the speculative Executor, gate tau).
  Returns ((env_state, policy_state, episode_ids), records [steps, B, ...])."""
  body = functools.partial(_collect_body, env, model, planner_cfg, params, random_phase, ex, tau)
  return jax.lax.scan(body, (env_state, policy_state, episode_ids), jax.random.split(key, steps))
