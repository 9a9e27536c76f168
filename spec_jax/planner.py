"""MPPI planning in the TD-MPC2 latent space, jit-compiled.

``plan`` works on ONE environment ([O] observation); vmap it over a batch of environments
(``plan_batch``). The horizon is a lax.scan, the MPPI iterations a lax.fori_loop.
"""
import functools
from typing import NamedTuple

import chex
import flax
import jax
import jax.numpy as jnp

from spec_jax import config as config_lib
from spec_jax import world_model as wm_lib


@flax.struct.dataclass
class PlannerState:
  """Carried between plan calls: the previous MPPI mean [H, A] for the warm start."""
  prev_mean: jax.Array


def init_state(cfg: config_lib.PlannerConfig, action_dim: int) -> PlannerState:
  return PlannerState(prev_mean=jnp.zeros((cfg.horizon, action_dim)))


class PlanResult(NamedTuple):
  action: jax.Array    # [A]      first action to execute (noised unless eval_mode), in [-1, 1]
  actions: jax.Array   # [H, A]   the whole chosen sequence (actions[0] == action)
  latents: jax.Array   # [H+1, Z] z_0 = enc(obs), z_{t+1} = d(z_t, actions[t])
  mean: jax.Array      # [H, A]   final MPPI mean
  std: jax.Array       # [H, A]   final MPPI std
  value: jax.Array     # []       estimated value of the chosen elite


class PlanNoise(NamedTuple):
  """Every random draw of one plan call (so runs can be replayed with external noise)."""
  pi_eps: jax.Array        # [H, P, A]    policy-prior trajectories
  sample: jax.Array        # [I, H, N-P, A] Gaussian action samples per iteration
  value_pi_eps: jax.Array  # [I, N, A]    policy action at z_H in the value estimate
  q_idx: jax.Array         # [I, 2]       the two Q members averaged per iteration
  gumbel: jax.Array        # [E]          Gumbel noise choosing the executed elite
  act: jax.Array           # [A]          exploration noise on the first action


def draw_noise(model: wm_lib.WorldModel, cfg: config_lib.PlannerConfig,
               key: jax.Array) -> PlanNoise:
  H, N, P, I, E = (cfg.horizon, cfg.num_samples, cfg.num_pi_trajs, cfg.iterations,
                   cfg.num_elites)
  A = model.cfg.action_dim
  k = jax.random.split(key, 6)
  q_idx = jax.vmap(lambda kk: jax.random.permutation(kk, model.cfg.num_q)[:2])(
      jax.random.split(k[3], I))
  return PlanNoise(pi_eps=jax.random.normal(k[0], (H, P, A)),
                   sample=jax.random.normal(k[1], (I, H, N - P, A)),
                   value_pi_eps=jax.random.normal(k[2], (I, N, A)), q_idx=q_idx,
                   gumbel=jax.random.gumbel(k[4], (E,)), act=jax.random.normal(k[5], (A,)))


class Rollout(NamedTuple):
  """The part of a value estimate before the terminal Q (see ``rollout_return``)."""
  z_h: jax.Array   # [N, Z] latent after the H actions
  ret: jax.Array   # [N]    discounted sum of the predicted rewards
  disc: jax.Array  # []     discount^H
  done: jax.Array  # [N]    1 once an episodic model predicted termination, else 0


def _start(z: jax.Array):
  """The roll-out carry (z, ret, disc, done) before the first action, rows of z [N, Z]."""
  return z, jnp.zeros(z.shape[0]), jnp.ones(()), jnp.zeros(z.shape[0])


def _accumulator(model, params, cfg, task):
  """(carry (z, ret, disc, done), r [N], z_next [N, Z]) -> the carry one step later: the
  discounted reward added unless done, done set once an episodic model predicts termination."""
  tk = task_kwargs(task)
  gamma = cfg.discount if task is None else model.discount(task, cfg.discount)

  def accumulate(carry, r, z_next):
    _, ret, disc, done = carry
    ret = ret + disc * (1.0 - done) * r
    if getattr(model.cfg, 'episodic', False):
      done = jnp.minimum(done + (model.termination(params, z_next, **tk) > 0.5), 1.0)
    return z_next, ret, disc * gamma, done

  return accumulate


def rollout_return(model: wm_lib.WorldModel, params, cfg: config_lib.PlannerConfig,
                   z: jax.Array, actions: jax.Array, task=None, shares=None) -> Rollout:
  """Rewards of action sequences through the dynamics. z [N, Z], actions [H, N, A].

  ret = sum_t discount^t (1 - done_t) r_hat_t; done_t = 1 once an episodic model's
  termination(z_s) > 0.5 for some s <= t (always 0 otherwise). ``task`` (multitask): conditions
  every head and picks the task's discount (ModelConfig.task_discounts, else cfg.discount).
  ``shares``: optional (dynamics, reward) ``latent_share`` of the z0 that every row of z equals
  ([mlp_dim] each): step 0 then adds only the actions' share per row (z0 sharing; same values
  up to float rounding). Deterministic: no random draw.
  """
  tk = task_kwargs(task)
  accumulate = _accumulator(model, params, cfg, task)

  def step(carry, a_t, first=None):
    z_t = carry[0]
    if first is None:
      r, z_next = model.reward(params, z_t, a_t, **tk), model.next(params, z_t, a_t, **tk)
    else:
      r = model.reward_from_share(params, first[1], a_t)
      z_next = model.next_from_share(params, first[0], a_t)
    return accumulate(carry, r, z_next), None

  init = _start(z)
  if shares is not None:
    init, _ = step(init, actions[0], shares)
    actions = actions[1:]
  carry, _ = jax.lax.scan(step, init, actions)
  return Rollout(*carry)


def terminal_value(model: wm_lib.WorldModel, params, rollout: Rollout, pi_eps: jax.Array,
                   q_idx: jax.Array, task=None) -> jax.Array:
  """rollout.ret + discount^H (1 - done) Q_avg(z_H, pi(z_H)) -> [N]: the policy's action at z_H
  drawn with pi_eps [N, A], Q averaged over the members q_idx [2]."""
  tk = task_kwargs(task)
  a_h, _ = model.pi_with_noise(params, rollout.z_h, pi_eps, **tk)
  emb_kw = {} if task is None else {'emb': model.task_emb(params, task)}
  q = model.q_pair_idx(params['Qs'], rollout.z_h, a_h, q_idx, reduce='avg', **emb_kw)
  return rollout.ret + rollout.disc * (1.0 - rollout.done) * q


def estimate_value(model: wm_lib.WorldModel, params, cfg: config_lib.PlannerConfig,
                   z: jax.Array, actions: jax.Array, pi_eps: jax.Array,
                   q_idx: jax.Array, task=None, shares=None) -> jax.Array:
  """Value of action sequences. z [N, Z], actions [H, N, A], pi_eps [N, A] -> [N].

  sum_t discount^t (1 - done_t) r_hat_t + discount^H (1 - done_H) Q_avg(z_H, pi(z_H)), Q_avg
  over members q_idx [2]: ``rollout_return`` then ``terminal_value`` (task, shares as there).
  """
  return terminal_value(model, params,
                        rollout_return(model, params, cfg, z, actions, task, shares),
                        pi_eps, q_idx, task)


def _concat_rollouts(a: Rollout, b: Rollout) -> Rollout:
  """Rows of a then rows of b (the same discount^H)."""
  return Rollout(z_h=jnp.concatenate([a.z_h, b.z_h]), ret=jnp.concatenate([a.ret, b.ret]),
                 disc=a.disc, done=jnp.concatenate([a.done, b.done]))


def task_kwargs(task):
  """Head keyword arguments: none without a task id (single-task and duck-typed models)."""
  return {} if task is None else {'task': task}


def policy_rollout(model: wm_lib.WorldModel, params, z: jax.Array,
                   pi_eps: jax.Array, task=None) -> jax.Array:
  """Policy-prior actions rolled out through the dynamics. z [P, Z], pi_eps [H, P, A] -> [H, P, A]."""
  def step(z_t, eps):
    a, _ = model.pi_with_noise(params, z_t, eps, **task_kwargs(task))
    return model.next(params, z_t, a, **task_kwargs(task)), a

  _, actions = jax.lax.scan(step, z, pi_eps)
  return actions


def policy_prior_rollout(model: wm_lib.WorldModel, params, cfg: config_lib.PlannerConfig,
                         z: jax.Array, pi_eps: jax.Array, task=None):
  """``policy_rollout`` and ``rollout_return`` of its actions in one scan (the rewards along
  the policy's own latents). z [P, Z], pi_eps [H, P, A] -> (actions [H, P, A], Rollout [P])."""
  tk = task_kwargs(task)
  accumulate = _accumulator(model, params, cfg, task)

  def step(carry, eps):
    z_t = carry[0]
    a, _ = model.pi_with_noise(params, z_t, eps, **tk)
    return accumulate(carry, model.reward(params, z_t, a, **tk),
                      model.next(params, z_t, a, **tk)), a

  carry, actions = jax.lax.scan(step, _start(z), pi_eps)
  return actions, Rollout(*carry)


def rollout_latents(model: wm_lib.WorldModel, params, z0: jax.Array,
                    actions: jax.Array, task=None) -> jax.Array:
  """z0 [Z], actions [H, A] -> latents [H+1, Z] (z0 first)."""
  def step(z, a):
    z_next = model.next(params, z, a, **task_kwargs(task))
    return z_next, z_next

  _, zs = jax.lax.scan(step, z0, actions)
  return jnp.concatenate([z0[None], zs], axis=0)


def _mppi_update(cfg: config_lib.PlannerConfig, value: jax.Array, actions: jax.Array,
                 temperature: jax.Array):
  """Elite selection and score-weighted mean/std. value [N], actions [H, N, A]."""
  value = jnp.nan_to_num(value, nan=0.0)
  elite_value, elite_idx = jax.lax.top_k(value, cfg.num_elites)
  elite_actions = actions[:, elite_idx]                                    # [H, E, A]
  score = jnp.exp(temperature * (elite_value - jnp.max(elite_value)))
  score = score / jnp.sum(score)
  mean = jnp.einsum('e,hea->ha', score, elite_actions) / (jnp.sum(score) + 1e-9)
  var = jnp.einsum('e,hea->ha', score, jnp.square(elite_actions - mean[:, None])) / (
      jnp.sum(score) + 1e-9)
  std = jnp.clip(jnp.sqrt(var), cfg.min_std, cfg.max_std)
  return mean, std, elite_actions, elite_value, score


def warm_start(prev_mean: jax.Array, shift, t0) -> jax.Array:
  """Initial MPPI mean: the previous mean [H, A] advanced by ``shift`` steps (the actions
  executed since that plan), zero-filled at the end; zeros at t0 or once shift >= H.
  E.g. H = 3, shift = 2: [m2, 0, 0]."""
  H = prev_mean.shape[0]
  src = jnp.arange(H) + jnp.asarray(shift, jnp.int32)
  shifted = jnp.where((src < H)[:, None], prev_mean[jnp.clip(src, 0, H - 1)], 0.0)
  return jnp.where(jnp.asarray(t0), jnp.zeros_like(prev_mean), shifted)


def _check_plan_inputs(model, cfg, obs, state):
  chex.assert_rank(obs, 1)
  if obs.shape[0] != model.cfg.obs_dim:
    raise ValueError(f'plan: obs must be [{model.cfg.obs_dim}], got {tuple(obs.shape)}; '
                     'use plan_batch for [B, O]')
  chex.assert_shape(state.prev_mean, (cfg.horizon, model.cfg.action_dim))


def _mlp_flops(width_in: int, hidden, width_out: int) -> int:
  widths = (width_in,) + tuple(hidden) + (width_out,)
  return sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))


def plan_flops(model_cfg: config_lib.ModelConfig, cfg: config_lib.PlannerConfig, *,
               official: bool = False) -> int:
  """Matrix-multiply FLOPs (2 per multiply-add) of one ``plan`` call, counted from the layer
  shapes; elementwise work (LayerNorm, Mish, SimNorm, two-hot decoding, MPPI statistics) is
  not counted.

  official=True: the official planner's count. Encoder once; policy-prior rollout P x H x
  (pi + dynamics); per MPPI iteration N x (H x (reward + dynamics) + pi + 2 Q members); the
  chosen plan's latents H x dynamics. As ``plan`` runs (official=False), two exact savings:
  the P policy-prior trajectories' rewards are computed once per plan along the policy
  roll-out's own latents, not re-rolled in every iteration; and z0's share of the first
  dynamics and reward layer at t = 0 is computed once per plan instead of once for every
  sampled row.
  """
  c = model_cfg
  zin = c.latent_dim + (c.task_dim if getattr(c, 'multitask', False) else 0)
  z0_part = 2 * (2 * zin * c.mlp_dim)           # dynamics + reward, first layer, z0 rows
  za, mlp = zin + c.action_dim, (c.mlp_dim,) * 2
  enc = _mlp_flops(c.obs_dim, (c.enc_dim,) * max(c.num_enc_layers - 1, 1), c.latent_dim)
  dyn = _mlp_flops(za, mlp, c.latent_dim)
  rew = q = _mlp_flops(za, mlp, c.num_bins)
  pi = _mlp_flops(c.latent_dim, mlp, 2 * c.action_dim)
  H, N, P, I = cfg.horizon, cfg.num_samples, cfg.num_pi_trajs, cfg.iterations
  total = enc + P * H * (pi + dyn) + I * N * (H * (rew + dyn) + pi + 2 * q) + H * dyn
  if official:
    return total
  # Policy-prior rows: their rewards ride on the policy roll-out's latents, once per plan
  # (P x H x reward) instead of P x H x (reward + dynamics) per iteration; the I x (N - P)
  # sampled rows start from z0's shares.
  saved_pi = P * H * (I * dyn + (I - 1) * rew)
  return total - saved_pi - (I * (N - P) - 1) * z0_part


@functools.partial(jax.jit, static_argnames=('model', 'cfg', 'eval_mode'))
def plan(model: wm_lib.WorldModel, params, cfg: config_lib.PlannerConfig, state: PlannerState,
         obs: jax.Array, key: jax.Array, t0: jax.Array, eval_mode: bool = False,
         temperature=None, shift=1, task=None):
  """One MPPI plan from observation ``obs`` [O].

  Args: t0 (traced bool) resets the warm start; temperature (traced scalar, default
  cfg.temperature); shift (traced int, default 1): steps executed since the previous plan,
  by which its mean is advanced for the warm start (see ``warm_start``); task (traced int,
  multitask models only): the task id (see ``plan_with_noise``).
  Returns (PlanResult, new PlannerState).
  """
  return plan_with_noise(model, params, cfg, state, obs, draw_noise(model, cfg, key), t0,
                         eval_mode, temperature, shift, task)


@functools.partial(jax.jit, static_argnames=('model', 'cfg', 'eval_mode'))
def plan_with_noise(model: wm_lib.WorldModel, params, cfg: config_lib.PlannerConfig,
                    state: PlannerState, obs: jax.Array, noise: PlanNoise, t0,
                    eval_mode: bool = False, temperature=None, shift=1, task=None):
  """``plan`` with every random draw given explicitly (see PlanNoise). Multitask models take
  ``task`` (obs zero-padded to obs_dim): sampled actions, mean and std are masked to the task's
  action dimensions as in the official planner, and the task's discount is used."""
  _check_plan_inputs(model, cfg, obs, state)
  z0 = exact_and_sampling_models(model, cfg)[0].encode(params, obs, **task_kwargs(task))
  return _plan_core(model, params, cfg, state, z0, noise, t0, eval_mode, temperature, shift, task)


@functools.partial(jax.jit, static_argnames=('model', 'cfg', 'eval_mode'))
def plan_from_latent(model: wm_lib.WorldModel, params, cfg: config_lib.PlannerConfig,
                     state: PlannerState, z0: jax.Array, key: jax.Array, t0,
                     eval_mode: bool = False, temperature=None, shift=1, task=None):
  """``plan`` seeded by a latent z0 [Z] instead of an observation (e.g. the model's predicted
  latent at the step where an action queue runs out: plan-ahead). Same draws as ``plan`` for
  the same key, so ``plan(obs)`` == ``plan_from_latent(encode(obs))``; ``task`` as in ``plan``.
  Returns (PlanResult, new PlannerState)."""
  chex.assert_shape(z0, (model.cfg.latent_dim,))
  chex.assert_shape(state.prev_mean, (cfg.horizon, model.cfg.action_dim))
  return _plan_core(model, params, cfg, state, z0, draw_noise(model, cfg, key), t0, eval_mode,
                    temperature, shift, task)


def _z0_shares(model, params, z0, task):
  """(dynamics, reward) latent shares of z0 [mlp_dim] each, or None for models without
  ``latent_share`` (duck-typed test models)."""
  if not hasattr(model, 'latent_share'):
    return None
  tk = task_kwargs(task)
  return (model.latent_share(params, 'dynamics', z0, **tk),
          model.latent_share(params, 'reward', z0, **tk))


def exact_and_sampling_models(model, cfg: config_lib.PlannerConfig):
  """(exact, sampling): ``model`` with float32 products (the encoder and the chosen plan's
  latents) and with ``cfg.matmul_dtype`` products (the sampled roll-outs and values). The
  config is the only source: a model passed in with another matmul_dtype is reset. Duck-typed
  models without ``with_matmul_dtype`` are returned as they are."""
  if not hasattr(model, 'with_matmul_dtype'):
    return model, model
  return model.with_matmul_dtype(None), model.with_matmul_dtype(cfg.matmul_dtype)


def _plan_core(model, params, cfg, state, z0, noise, t0, eval_mode, temperature, shift,
               task=None):
  """MPPI from latent z0 [Z] with explicit draws: the shared body of every plan entry point.
  The chosen plan's latents are rolled out in float32, the samples with ``cfg.matmul_dtype``
  products (``exact_and_sampling_models``)."""
  exact_model, model = exact_and_sampling_models(model, cfg)
  noise = jax.tree_util.tree_map(jnp.asarray, noise)
  temperature = jnp.asarray(cfg.temperature if temperature is None else temperature, jnp.float32)
  H, N, P, A, E = (cfg.horizon, cfg.num_samples, cfg.num_pi_trajs, model.cfg.action_dim,
                   cfg.num_elites)
  mask = None if task is None else model.action_mask(task)                  # [A] or None
  masked = (lambda x: x) if mask is None else (lambda x: x * mask)
  z = jnp.broadcast_to(z0, (N, z0.shape[-1]))
  shares = _z0_shares(model, params, z0, task)  # once per plan, not per sample and iteration
  # The policy-prior trajectories are the same in every iteration: their rewards and z_H are
  # computed once per plan; only their terminal value (fresh draws) is per iteration.
  # (The policy masks the task's missing action dimensions to exactly 0 itself: masked() is an
  # identity on its actions, which therefore drive the same dynamics in both places.)
  pi_actions, pi_part = policy_prior_rollout(model, params, cfg, z[:P], noise.pi_eps, task)
  pi_actions = masked(pi_actions)
  mean = warm_start(state.prev_mean, shift, t0)
  std = jnp.full((H, A), cfg.max_std if cfg.init_std is None else cfg.init_std)

  def iteration(i, carry):
    mean, std, _, _, _ = carry
    sampled = masked(jnp.clip(mean[:, None] + std[:, None] * noise.sample[i], -1.0, 1.0))
    part = rollout_return(model, params, cfg, z[P:], sampled, task, shares)
    value = terminal_value(model, params, _concat_rollouts(pi_part, part), noise.value_pi_eps[i],
                           noise.q_idx[i], task)
    actions = jnp.concatenate([pi_actions, sampled], axis=1)
    mean, std, elite_actions, elite_value, score = _mppi_update(cfg, value, actions, temperature)
    return masked(mean), masked(std), elite_actions, elite_value, score

  init = (mean, std, jnp.zeros((H, E, A)), jnp.zeros((E,)), jnp.ones((E,)) / E)
  mean, std, elite_actions, elite_value, score = jax.lax.fori_loop(
      0, cfg.iterations, iteration, init)
  idx = jnp.argmax(jnp.log(score) + noise.gumbel)  # Gumbel-max sample of an elite by score
  chosen = elite_actions[:, idx]                                            # [H, A]
  first = chosen[0]
  if not eval_mode:
    first = first + std[0] * noise.act
  first = jnp.clip(first, -1.0, 1.0)
  chosen = chosen.at[0].set(first)
  latents = rollout_latents(exact_model, params, z0, chosen, task)
  result = PlanResult(action=first, actions=chosen, latents=latents, mean=mean, std=std,
                      value=elite_value[idx])
  return result, PlannerState(prev_mean=mean)


@functools.partial(jax.jit, static_argnames=('model', 'cfg', 'eval_mode'))
def plan_batch(model: wm_lib.WorldModel, params, cfg: config_lib.PlannerConfig,
               state: PlannerState, obs: jax.Array, key: jax.Array, t0: jax.Array,
               eval_mode: bool = False, temperature=None, task=None):
  """``plan`` vmapped over environments: obs [B, O], state.prev_mean [B, H, A], t0 [B],
  task [B] or scalar (multitask models only).

  ``key`` is a single key (split per environment). Returns batched (PlanResult, PlannerState).
  """
  chex.assert_rank(obs, 2)
  B = obs.shape[0]
  keys = jax.random.split(key, B)
  temperature = jnp.asarray(cfg.temperature if temperature is None else temperature, jnp.float32)
  tasks = jnp.zeros((B,), jnp.int32) if task is None else jnp.broadcast_to(task, (B,))
  fn = lambda s, o, k, t, c: plan(model, params, cfg, s, o, k, t, eval_mode, temperature, 1,
                                  None if task is None else c)
  return jax.vmap(fn)(state, obs, keys, jnp.broadcast_to(jnp.asarray(t0), (B,)), tasks)
