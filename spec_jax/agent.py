"""TD-MPC2 losses and updates: one jitted update, an epoch of updates as a lax.scan.

Semantics follow the official agent: TD targets r + discount * min of 2 random target Qs at
(next_z, pi(next_z)) with next_z = enc(obs[1:]) without gradient; rho-weighted latent
consistency, two-hot reward and value cross-entropy; clip 20 and Adam with the encoder at
0.3x lr; then a policy step on the detached latent rollout against the updated (detached) Q
ensemble, scaled by a running 5-95 percentile range; then a Polyak target update.
"""
import dataclasses
import functools
from typing import Any, Dict, Tuple

import chex
import flax
import jax
import jax.numpy as jnp
import optax

from spec_jax import numerics
from spec_jax import replay
from spec_jax import world_model as wm_lib

MODEL_KEYS = ('encoder', 'dynamics', 'reward', 'Qs')


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Official TD-MPC2 training hyper-parameters. ``polyak`` is the target-Q (and Q-scale)
  soft-update rate (the official ``tau``; renamed so it is not confused with the speculation
  mismatch threshold tau; ``from_dict`` still accepts the old key)."""
  batch_size: int = 256
  horizon: int = 3
  rho: float = 0.5
  consistency_coef: float = 20.0
  reward_coef: float = 0.1
  value_coef: float = 0.1
  entropy_coef: float = 1e-4
  lr: float = 3e-4
  enc_lr_scale: float = 0.3
  grad_clip_norm: float = 20.0
  polyak: float = 0.01
  discount: float = 0.99

  def __post_init__(self):
    if self.batch_size < 1 or self.horizon < 1:
      raise ValueError('batch_size and horizon must be >= 1')
    if not 0 < self.rho <= 1 or not 0 < self.polyak <= 1 or not 0 < self.discount <= 1:
      raise ValueError('rho, polyak and discount must lie in (0, 1]')
    if self.lr <= 0 or self.grad_clip_norm <= 0:
      raise ValueError('lr and grad_clip_norm must be > 0')

  @classmethod
  def from_dict(cls, values: Dict[str, Any]) -> 'TrainConfig':
    """A TrainConfig from a config block; the pre-rename key ``tau`` (Polyak rate) is
    migrated to ``polyak`` (ValueError if both are given)."""
    values = dict(values)
    if 'tau' in values:
      if 'polyak' in values:
        raise ValueError("train config gives both 'tau' (old name) and 'polyak'; keep 'polyak'")
      values['polyak'] = values.pop('tau')
    return cls(**values)


@flax.struct.dataclass
class TrainState:
  params: Dict[str, chex.ArrayTree]
  target_qs: chex.ArrayTree
  opt_state: optax.OptState
  pi_opt_state: optax.OptState
  q_scale: jax.Array  # [] running 5-95 percentile range of Q (>= 1)
  step: jax.Array     # [] number of updates done


def make_optimizers(cfg: TrainConfig):
  """(model optimizer over MODEL_KEYS, policy optimizer over params['pi'])."""
  label = lambda tree: {k: ('enc' if k == 'encoder' else 'rest') for k in tree}
  model_opt = optax.chain(
      optax.clip_by_global_norm(cfg.grad_clip_norm),
      optax.multi_transform({'enc': optax.adam(cfg.lr * cfg.enc_lr_scale),
                             'rest': optax.adam(cfg.lr)}, label))
  pi_opt = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm),
                       optax.adam(cfg.lr, eps=1e-5))
  return model_opt, pi_opt


def _model_part(params):
  return {k: params[k] for k in MODEL_KEYS}


def init_train_state(model: wm_lib.WorldModel, cfg: TrainConfig, key: jax.Array) -> TrainState:
  """Fresh parameters, target Qs and optimiser states (ValueError for an untrainable model)."""
  check_trainable(model)
  params = model.init(key)
  model_opt, pi_opt = make_optimizers(cfg)
  return TrainState(params=params, target_qs=jax.tree_util.tree_map(jnp.copy, params['Qs']),
                    opt_state=model_opt.init(_model_part(params)),
                    pi_opt_state=pi_opt.init(params['pi']),
                    q_scale=jnp.ones(()), step=jnp.zeros((), jnp.int32))


def td_targets(model, params, target_qs, next_z, reward, discount, key):
  """next_z [H, B, Z], reward [H, B] -> [H, B] (no gradient)."""
  pi_key, q_key = jax.random.split(key)
  a, _ = model.pi(params, next_z, pi_key)
  q = model.q_pair(target_qs, next_z, a, q_key, reduce='min')
  return jax.lax.stop_gradient(reward + discount * q)


def model_loss(model_params, pi_params, model, cfg: TrainConfig, target_qs, batch, key):
  """World-model loss on a batch (obs [H+1, B, O], action [H, B, A], reward [H, B])."""
  c = model.cfg
  params = dict(model_params, pi=pi_params)
  td_key, drop_key = jax.random.split(key)
  next_z = jax.lax.stop_gradient(model.encode(params, batch.obs[1:]))
  targets = td_targets(model, params, target_qs, next_z, batch.reward, cfg.discount, td_key)

  def roll(z, inp):
    a, target_z = inp
    z = model.next(params, z, a)
    return z, (z, jnp.mean(jnp.square(z - target_z)))

  z0 = model.encode(params, batch.obs[0])
  _, (zs_next, mse) = jax.lax.scan(roll, z0, (batch.action, next_z))
  zs = jnp.concatenate([z0[None], zs_next], axis=0)                      # [H+1, B, Z]
  rho = cfg.rho ** jnp.arange(cfg.horizon)
  consistency = jnp.sum(rho * mse) / cfg.horizon
  reward_logits = model.reward_logits(params, zs[:-1], batch.action)
  reward_ce = numerics.soft_ce(reward_logits, batch.reward, c.num_bins, c.vmin, c.vmax)
  reward_loss = jnp.sum(rho * reward_ce.mean(-1)) / cfg.horizon
  q_logits = model.q_logits(params['Qs'], zs[:-1], batch.action, dropout_key=drop_key)
  value_ce = numerics.soft_ce(q_logits, targets[None], c.num_bins, c.vmin, c.vmax)  # [Q, H, B]
  value_loss = jnp.sum(rho * value_ce.mean(-1).sum(0)) / (cfg.horizon * c.num_q)
  total = (cfg.consistency_coef * consistency + cfg.reward_coef * reward_loss
           + cfg.value_coef * value_loss)
  aux = dict(consistency_loss=consistency, reward_loss=reward_loss, value_loss=value_loss,
             total_loss=total)
  return total, (aux, jax.lax.stop_gradient(zs))


def percentile_range(x: jax.Array) -> jax.Array:
  """95th minus 5th percentile (linear interpolation) of x [B], floored at 1."""
  lo, hi = jnp.percentile(x, jnp.array([5.0, 95.0]), method='linear')
  return jnp.maximum(hi - lo, 1.0)


def pi_loss(pi_params, model, cfg: TrainConfig, params, zs, q_scale, key):
  """Policy loss on detached latents zs [H+1, B, Z]; returns (loss, (new_scale, aux))."""
  pi_key, q_key, drop_key = jax.random.split(key, 3)
  p = dict(params, pi=pi_params)
  a, info = model.pi(p, zs, pi_key)
  q = model.q_pair(jax.lax.stop_gradient(params['Qs']), zs, a, q_key, 'avg', drop_key)  # [H+1, B]
  new_scale = q_scale + cfg.polyak * (percentile_range(jax.lax.stop_gradient(q[0])) - q_scale)
  q = q / new_scale
  rho = cfg.rho ** jnp.arange(zs.shape[0])
  per_t = -(cfg.entropy_coef * info.scaled_entropy[..., 0] + q).mean(-1)
  loss = jnp.mean(per_t * rho)
  return loss, (new_scale, dict(pi_loss=loss, pi_entropy=info.entropy.mean(), pi_scale=new_scale))


def check_trainable(model: wm_lib.WorldModel) -> None:
  """Raises ValueError for the models `update` cannot train (multitask or episodic)."""
  if model.cfg.num_tasks or model.cfg.episodic:
    kind = 'multitask' if model.cfg.num_tasks else 'episodic'
    raise ValueError(f'training a {kind} model is not supported (no task ids in the batch, no '
                     'termination loss): such models are for planning with converted weights')


@functools.partial(jax.jit, static_argnames=('model', 'cfg'))
def update(model: wm_lib.WorldModel, cfg: TrainConfig, state: TrainState, batch: replay.Batch,
           key: jax.Array) -> Tuple[TrainState, Dict[str, jax.Array]]:
  """One TD-MPC2 update (model step, policy step, target update).

  Single-task, non-episodic models only: a multitask model needs task ids in the batch and an
  episodic one a termination loss and masked TD targets, neither implemented (such models are
  converted official weights, for planning); they raise ValueError here.
  """
  check_trainable(model)
  chex.assert_rank(batch.obs, 3)
  chex.assert_equal(batch.obs.shape[0], cfg.horizon + 1)
  model_key, pi_key = jax.random.split(key)
  model_opt, pi_opt = make_optimizers(cfg)
  grads, (aux, zs) = jax.grad(model_loss, has_aux=True)(
      _model_part(state.params), state.params['pi'], model, cfg, state.target_qs, batch, model_key)
  updates, opt_state = model_opt.update(grads, state.opt_state, _model_part(state.params))
  new_model = optax.apply_updates(_model_part(state.params), updates)
  params = dict(new_model, pi=state.params['pi'])
  pi_grads, (q_scale, pi_aux) = jax.grad(pi_loss, has_aux=True)(
      state.params['pi'], model, cfg, params, zs, state.q_scale, pi_key)
  pi_updates, pi_opt_state = pi_opt.update(pi_grads, state.pi_opt_state, state.params['pi'])
  params['pi'] = optax.apply_updates(state.params['pi'], pi_updates)
  target_qs = jax.tree_util.tree_map(lambda t, o: t + cfg.polyak * (o - t), state.target_qs,
                                     params['Qs'])
  aux.update(pi_aux, grad_norm=optax.tree.norm(grads), pi_grad_norm=optax.tree.norm(pi_grads))
  new_state = TrainState(params=params, target_qs=target_qs, opt_state=opt_state,
                         pi_opt_state=pi_opt_state, q_scale=q_scale, step=state.step + 1)
  return new_state, aux


@functools.partial(jax.jit, static_argnames=('model', 'cfg', 'num_updates'))
def update_epoch(model: wm_lib.WorldModel, cfg: TrainConfig, state: TrainState,
                 buf: replay.ReplayBuffer, key: jax.Array, num_updates: int):
  """``num_updates`` updates as one lax.scan, each on a fresh sample. Returns mean metrics."""
  def body(s, k):
    sample_key, update_key = jax.random.split(k)
    batch = replay.sample(buf, sample_key, cfg.batch_size, cfg.horizon + 1)
    return update(model, cfg, s, batch, update_key)

  state, metrics = jax.lax.scan(body, state, jax.random.split(key, num_updates))
  return state, jax.tree_util.tree_map(jnp.mean, metrics)
