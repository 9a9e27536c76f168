"""Mutation-check tests (session 17) for the planner, world model and agent: hand-worked values
for what the golden vectors of the official code do not pin down (training targets and loss
weights, stop-gradients, which Q ensemble the policy step uses, dropout placement, MPPI
statistics with NaN values and std clamping, the executed action's noise, clip and value, the
batched planner's temperature, the task-embedding max-norm). Tiny models; the agent tests share
one compiled ``agent.update``."""
import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from spec_jax import agent
from spec_jax import config
from spec_jax import numerics
from spec_jax import planner
from spec_jax import replay
from spec_jax import world_model
import toy

O, A, Z, H, B = 3, 2, 8, 2, 4
TINY = config.ModelConfig(obs_dim=O, action_dim=A, latent_dim=Z, enc_dim=8, mlp_dim=8, num_q=2,
                          simnorm_dim=4, dropout=0.0)
# rho 0.5, discount 0.99, consistency/reward/value weights 20/0.1/0.1; no entropy term.
CFG = agent.TrainConfig(batch_size=B, horizon=H, polyak=0.5, entropy_coef=0.0)


def _init_params():
  """Parameters of the tiny model's structure (eval_shape: nothing compiled), filled as the
  official initialisation does: kernels N(0, 0.02^2), biases 0, LayerNorm scales 1, reward and
  Q output kernels 0."""
  rng = np.random.default_rng(0)

  def fill(path, leaf):
    names = [p.key for p in path]
    if names[-1] == 'kernel' and not (names[-2] == 'dense_out' and names[0] in ('reward', 'Qs')):
      return jnp.asarray(0.02 * rng.standard_normal(leaf.shape), jnp.float32)
    return (jnp.ones if names[-1] == 'scale' else jnp.zeros)(leaf.shape, jnp.float32)

  shapes = jax.eval_shape(world_model.WorldModel(TINY).init, jax.random.PRNGKey(0))
  return jax.tree_util.tree_map_with_path(fill, shapes)


_PARAMS = _init_params()


def _model(dropout=0.0):
  """The tiny model (Q dropout ``dropout``) and a fresh copy of its parameters (new dicts, so a
  test may replace leaves)."""
  wm = world_model.WorldModel(dataclasses.replace(TINY, dropout=dropout))
  return wm, jax.tree_util.tree_map(lambda x: x, _PARAMS)


def _batch(seed=1, zero_actions=False):
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
  action = jax.random.uniform(k2, (H, B, A), minval=-1, maxval=1)
  return replay.Batch(obs=jax.random.normal(k1, (H + 1, B, O)),
                      action=jnp.zeros_like(action) if zero_actions else action,
                      reward=jax.random.uniform(k3, (H, B)))


def _normal(seed, shape, scale):
  return scale * jax.random.normal(jax.random.PRNGKey(seed), shape)


def _zero_rows(kernel, rows, member_axis=False):
  """``kernel`` with the input rows ``rows`` (a slice) set to 0 (Q kernels: per member)."""
  return kernel.at[:, rows].set(0.0) if member_axis else kernel.at[rows].set(0.0)


@functools.partial(jax.jit, static_argnums=0)
def _rollout(wm, params, batch):
  """Predicted latents z_0 = enc(obs_0), z_{t+1} = d(z_t, a_t): [H+1, B, Z]."""
  zs = [wm.encode(params, batch.obs[0])]
  for t in range(H):
    zs.append(wm.next(params, zs[-1], batch.action[t]))
  return jnp.stack(zs)


def _update(params, batch, target_qs=None, q_scale=1.0):
  """One ``agent.update`` of the tiny model from ``params`` (fresh optimizer states)."""
  wm = world_model.WorldModel(TINY)
  model_opt, pi_opt = agent.make_optimizers(CFG)
  state = agent.TrainState(
      params=params, target_qs=params['Qs'] if target_qs is None else target_qs,
      opt_state=model_opt.init(agent._model_part(params)), pi_opt_state=pi_opt.init(params['pi']),
      q_scale=jnp.float32(q_scale), step=jnp.int32(0))
  return agent.update(wm, CFG, state, batch, jax.random.PRNGKey(8))


# ---- agent: model loss ------------------------------------------------------------------------

def _adam_by_hand(grads, lr, eps, b1=0.9, b2=0.999):
  """Adam's updates (numpy) for a sequence of gradient arrays."""
  m = v = 0.0
  out = []
  for t, g in enumerate(grads, start=1):
    m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    out.append(-lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps))
  return out


def test_optimizers_clip_the_global_norm_before_adam():
  """A gradient of global norm 1000 is scaled to norm 20 before Adam (over the encoder AND the
  rest together for the model optimiser, whose encoder has 0.3x the learning rate), a gradient
  of norm 0.5 is not; Adam's second update depends on the first gradient's scale, so it shows
  the clipping (Adam's first step is sign-like and does not)."""
  rng = np.random.default_rng(3)
  g_enc, g_dyn = rng.standard_normal(3), rng.standard_normal(4)
  norm = float(np.sqrt(np.sum(g_enc ** 2) + np.sum(g_dyn ** 2)))
  scales = (1000.0 / norm, 0.5 / norm)           # global norms 1000, then 0.5
  clipped = (20.0 / norm, 0.5 / norm)
  model_opt, pi_opt = agent.make_optimizers(CFG)
  params = {'encoder': jnp.zeros(3), 'dynamics': jnp.zeros(4)}
  opt_state, got = model_opt.init(params), []
  for s in scales:
    grads = {'encoder': jnp.asarray(s * g_enc), 'dynamics': jnp.asarray(s * g_dyn)}
    upd, opt_state = model_opt.update(grads, opt_state, params)
    got.append(upd)
  for key, g, lr in (('encoder', g_enc, CFG.lr * CFG.enc_lr_scale), ('dynamics', g_dyn, CFG.lr)):
    want = _adam_by_hand([c * g for c in clipped], lr, 1e-8)
    for step in range(2):
      np.testing.assert_allclose(np.asarray(got[step][key]), want[step], rtol=1e-4, atol=1e-9)
  pi_state, pi_got = pi_opt.init(jnp.zeros(3)), []
  for s in (1000.0, 0.5):
    g = s * g_enc / np.linalg.norm(g_enc)
    upd, pi_state = pi_opt.update(jnp.asarray(g), pi_state)
    pi_got.append(upd)
  want = _adam_by_hand([c * g_enc / np.linalg.norm(g_enc) for c in (20.0, 0.5)], CFG.lr, 1e-5)
  for step in range(2):
    np.testing.assert_allclose(np.asarray(pi_got[step]), want[step], rtol=1e-4, atol=1e-9)


def test_value_loss_targets_are_reward_plus_discounted_min_of_the_target_qs():
  # Online Q members: constant ramp logits b_k = s k (zero output kernel), so with the two-hot
  # target's weights on bins around position p(y) = (symlog(y) + 10) / 0.2 the cross-entropy is
  # logsumexp(b) - s p(y). Target members: one-hot logits at bins 55 and 60, i.e. the constant
  # values e - 1 and e^2 - 1. TD target y = r + discount * min = r + 0.99 (e - 1).
  _, params = _model()
  s = 0.05
  ramp = s * np.arange(101.0)
  q = params['Qs']['dense_out']
  q['kernel'] = jnp.zeros_like(q['kernel'])
  q['bias'] = jnp.asarray(np.stack([ramp, ramp]), jnp.float32)
  target = jax.tree_util.tree_map(jnp.copy, params['Qs'])
  target['dense_out']['bias'] = 100.0 * jax.nn.one_hot(jnp.array([55, 60]), 101)
  batch = _batch()
  _, aux = _update(params, batch, target)
  r = np.asarray(batch.reward, np.float64)
  y = r + 0.99 * (math.e - 1.0)
  lse = np.log(np.sum(np.exp(ramp)))
  ce = lse - s * (np.log1p(y) + 10.0) / 0.2                                 # [H, B]
  want = sum(0.5 ** t * ce[t].mean() for t in range(H)) / H
  np.testing.assert_allclose(aux['value_loss'], want, rtol=1e-5)


def test_consistency_and_reward_losses_use_the_rolled_out_latents():
  # Consistency: rho^t-weighted MSE between d(z_t, a_t) and enc(obs_{t+1}); reward: rho^t-weighted
  # cross-entropy of the reward head at (z_t, a_t), t = 0..H-1, z_0 = enc(obs_0); both / H.
  wm, params = _model()
  params['reward']['dense_out']['kernel'] = _normal(3, params['reward']['dense_out']['kernel'].shape,
                                                    1.0)
  batch = _batch()
  _, aux = _update(params, batch)

  @jax.jit
  def reference(params, batch):
    zs = _rollout(wm, params, batch)
    enc_next = wm.encode(params, batch.obs[1:])
    cons = sum(0.5 ** t * jnp.mean(jnp.square(zs[t + 1] - enc_next[t])) for t in range(H)) / H
    rew = sum(0.5 ** t * jnp.mean(numerics.soft_ce(
        wm.reward_logits(params, zs[t], batch.action[t]), batch.reward[t], 101, -10.0, 10.0))
              for t in range(H)) / H
    return cons, rew

  cons, rew = reference(params, batch)
  np.testing.assert_allclose(aux['consistency_loss'], cons, rtol=1e-5)
  np.testing.assert_allclose(aux['reward_loss'], rew, rtol=1e-5)
  np.testing.assert_allclose(aux['total_loss'], 20.0 * cons + 0.1 * rew + 0.1 * aux['value_loss'],
                             rtol=1e-5)


def test_consistency_targets_carry_no_gradient_into_the_encoder():
  # Dynamics, reward and Q heads blind to z (zero z rows of their first kernels): the encoder
  # then reaches the loss only through the stop-gradient targets enc(obs[1:]); its gradient is
  # 0, so Adam leaves it exactly as it was (while the dynamics move).
  _, params = _model()
  for head in ('dynamics', 'reward', 'Qs'):
    k = params[head]['dense_0']['kernel']
    params[head]['dense_0']['kernel'] = _zero_rows(k, slice(0, Z), head == 'Qs')
  params['reward']['dense_out']['kernel'] = _normal(3, params['reward']['dense_out']['kernel'].shape,
                                                    1.0)
  new, _ = _update(params, _batch())
  for got, old in zip(jax.tree_util.tree_leaves(new.params['encoder']),
                      jax.tree_util.tree_leaves(params['encoder'])):
    np.testing.assert_array_equal(got, old)
  assert not np.allclose(new.params['dynamics']['dense_out']['kernel'],
                         params['dynamics']['dense_out']['kernel'])


def test_value_loss_applies_q_dropout_in_training():
  # Target Qs constant (zero output kernel): the TD targets do not depend on the key, so only
  # the online Q dropout makes the value loss depend on it; the other losses do not.
  wm, params = _model(dropout=0.5)
  params['Qs']['dense_out']['kernel'] = _normal(4, params['Qs']['dense_out']['kernel'].shape, 1.0)
  target = jax.tree_util.tree_map(jnp.zeros_like, params['Qs'])
  batch = _batch()
  loss = jax.jit(lambda k: agent.model_loss(agent._model_part(params), params['pi'], wm, CFG,
                                            target, batch, k)[1][0])
  a1, a2 = loss(jax.random.PRNGKey(5)), loss(jax.random.PRNGKey(6))
  np.testing.assert_allclose(a1['reward_loss'], a2['reward_loss'], rtol=1e-6)
  assert abs(float(a1['value_loss'] - a2['value_loss'])) > 1e-3


# ---- agent: policy step -----------------------------------------------------------------------

def test_policy_step_uses_the_updated_qs_the_first_step_scale_and_rho():
  # Q blind to the action (zero action rows of the first Q kernel; zero batch actions keep
  # those rows' gradient, hence their update, at 0) and no entropy term: the policy loss is
  # -mean_t rho^t mean_b Q_new(z_t) / scale with scale = s + polyak (range5-95(Q_new(z_0)) - s),
  # Q_new the ensemble AFTER this update's model step, z_t the model step's latents.
  wm, params = _model()
  params['Qs']['dense_0']['kernel'] = _zero_rows(params['Qs']['dense_0']['kernel'],
                                                 slice(Z, None), True)
  params['Qs']['dense_out']['kernel'] = _normal(7, params['Qs']['dense_out']['kernel'].shape, 1.0)
  batch = _batch(zero_actions=True)
  new, aux = _update(params, batch, q_scale=3.0)
  np.testing.assert_array_equal(new.params['Qs']['dense_0']['kernel'][:, Z:], 0.0)
  zs = _rollout(wm, params, batch)                                           # old model
  zero_a = jnp.zeros(zs.shape[:-1] + (A,))
  q_avg = jax.jit(lambda qs: numerics.two_hot_inv(wm.q_logits(qs, zs, zero_a), -10.0,
                                                  10.0).mean(0))
  q_of = lambda qs: np.asarray(q_avg(qs), np.float64)                       # [H+1, B]

  def range_5_95(x):
    lo, hi = np.percentile(x, [5, 95])
    return max(hi - lo, 1.0)

  q_new, q_old = q_of(new.params['Qs']), q_of(params['Qs'])
  r0 = range_5_95(q_new[0])
  # The test discriminates: the ranges differ by time step and by ensemble.
  assert r0 > 1.5 and abs(r0 - range_5_95(q_new[-1])) > 0.05
  assert abs(r0 - range_5_95(q_old[0])) > 0.05
  scale = 3.0 + 0.5 * (r0 - 3.0)
  want = np.mean([0.5 ** t * -(q_new[t].mean() / scale) for t in range(H + 1)])
  np.testing.assert_allclose(aux['pi_scale'], scale, rtol=1e-5)
  np.testing.assert_allclose(new.q_scale, scale, rtol=1e-5)
  np.testing.assert_allclose(aux['pi_loss'], want, rtol=1e-4)


# ---- world model ------------------------------------------------------------------------------

_DROP_WM = world_model.WorldModel(dataclasses.replace(TINY, dropout=0.5))
_q_logits = jax.jit(_DROP_WM.q_logits)   # (q_params, z, a, dropout_key=None) -> [M, ..., bins]
_Z3, _A3 = _normal(10, (3, Z), 1.0), jnp.full((3, A), 0.5)


def test_q_members_draw_independent_dropout_masks():
  _, params = _model()
  qs = jax.tree_util.tree_map(lambda x: jnp.stack([x[0], x[0]]), params['Qs'])  # equal members
  qs['dense_out']['kernel'] = jnp.stack([_normal(9, qs['dense_out']['kernel'].shape[1:], 1.0)] * 2)
  ev = _q_logits(qs, _Z3, _A3)
  np.testing.assert_array_equal(ev[0], ev[1])
  tr = _q_logits(qs, _Z3, _A3, jax.random.PRNGKey(11))
  assert not np.allclose(tr[0], tr[1])


def test_q_dropout_acts_on_the_first_hidden_layer_only():
  # First Q layer outputs 0 (zero kernel and bias): dropping its units changes nothing, and the
  # second layer's output is its bias. Dropout anywhere after the first layer would show.
  _, params = _model()
  qs = params['Qs']
  for leaf in ('kernel', 'bias'):
    qs['dense_0'][leaf] = jnp.zeros_like(qs['dense_0'][leaf])
  qs['dense_1']['bias'] = _normal(12, qs['dense_1']['bias'].shape, 1.0)
  qs['dense_out']['kernel'] = _normal(13, qs['dense_out']['kernel'].shape, 1.0)
  ev = _q_logits(qs, _Z3, _A3)
  for seed in (15, 16):
    np.testing.assert_allclose(_q_logits(qs, _Z3, _A3, jax.random.PRNGKey(seed)), ev, atol=1e-6)


def test_task_embedding_rows_are_clamped_to_unit_norm():
  cfg = config.ModelConfig(obs_dim=O, action_dim=A, latent_dim=Z, enc_dim=8, mlp_dim=8,
                           simnorm_dim=4, num_tasks=3, task_dim=2, action_dims=(1, 2, 2))
  wm = world_model.WorldModel(cfg)
  params = {'task_emb': jnp.array([[3.0, 4.0], [0.3, -0.4], [0.0, 1.0]])}
  np.testing.assert_allclose(wm.task_emb(params, jnp.array([0, 1, 2])),
                             [[0.6, 0.8], [0.3, -0.4], [0.0, 1.0]], rtol=1e-6)


# ---- planner ----------------------------------------------------------------------------------

def test_mppi_update_hand_values():
  # Values [-5, 3, NaN, -1]: the NaN counts as 0, so the elites (E = 2) are rows 1 (value 3) and
  # 2 (value 0). Temperature ln(3) / 3: scores exp(t (v - 3)) = [1, 1/3] -> weights [3/4, 1/4].
  # Elite actions: dim 0 +-0.4 -> mean 0.2, var 3/4 0.04 + 1/4 0.36 = 0.12; dim 1 equal (0.1)
  # -> std 0 clamped to min_std 0.05; dim 2 +-1 -> mean 0.5, var 3/4 0.25 + 1/4 2.25 = 0.75,
  # std 0.866 clamped to max_std 0.6.
  cfg = config.PlannerConfig(horizon=1, num_samples=4, num_elites=2, num_pi_trajs=0,
                             min_std=0.05, max_std=0.6)
  value = jnp.array([-5.0, 3.0, jnp.nan, -1.0])
  actions = jnp.array([[[-0.9, -0.9, -0.9], [0.4, 0.1, 1.0], [-0.4, 0.1, -1.0],
                        [0.9, 0.9, 0.9]]])                                   # [H=1, N=4, A=3]
  mean, std, elite_actions, elite_value, score = planner._mppi_update(
      cfg, value, actions, jnp.float32(math.log(3.0) / 3.0))
  np.testing.assert_allclose(elite_value, [3.0, 0.0])
  np.testing.assert_allclose(elite_actions, actions[:, 1:3])
  np.testing.assert_allclose(score, [0.75, 0.25], rtol=1e-6)
  np.testing.assert_allclose(mean, [[0.2, 0.1, 0.5]], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(std, [[math.sqrt(0.12), 0.05, 0.6]], rtol=1e-5)


def _toy_plan_setup():
  model = toy.ToyModel()
  cfg = config.PlannerConfig(horizon=2, iterations=2, num_samples=16, num_elites=4,
                             num_pi_trajs=2)
  return model, cfg, planner.init_state(cfg, 3)


def test_executed_action_is_the_elite_first_action_plus_first_step_std_noise_clipped():
  model, cfg, state = _toy_plan_setup()
  noise = planner.draw_noise(model, cfg, jax.random.PRNGKey(3))
  obs = jnp.array([0.2, -0.1, 0.4])
  run = lambda act: planner.plan_with_noise(model, toy.TOY_PARAMS, cfg, state, obs,
                                            noise._replace(act=act), True, False)[0]
  base = run(jnp.zeros(3))                     # zero exploration noise: the elite's own action
  assert not np.allclose(base.std[0], base.std[-1])   # the step of the std matters
  act = jnp.array([0.7, -0.5, 0.3])
  res = run(act)
  np.testing.assert_allclose(res.action, np.clip(base.action + base.std[0] * act, -1, 1),
                             atol=1e-6)
  np.testing.assert_allclose(res.actions[1:], base.actions[1:])
  big = run(jnp.array([60.0, -60.0, 60.0]))
  np.testing.assert_array_equal(big.action, [1.0, -1.0, 1.0])
  np.testing.assert_array_equal(big.actions[0], big.action)


def test_plan_batch_uses_the_given_temperature():
  model, cfg, _ = _toy_plan_setup()
  B_ = 2
  state = planner.PlannerState(prev_mean=jnp.zeros((B_, cfg.horizon, 3)))
  obs = jnp.array([[0.2, -0.1, 0.4], [-0.3, 0.5, 0.0]])
  key = jax.random.PRNGKey(4)
  batch = lambda temp: planner.plan_batch(model, toy.TOY_PARAMS, cfg, state, obs, key, True,
                                          True, temp)[0]
  hot, cold = batch(0.01), batch(50.0)
  assert not np.allclose(hot.mean, cold.mean)
  single = planner.plan(model, toy.TOY_PARAMS, cfg, planner.init_state(cfg, 3), obs[1],
                        jax.random.split(key, B_)[1], True, True, 0.01)[0]
  np.testing.assert_allclose(hot.mean[1], single.mean, atol=1e-5)


def test_plan_value_is_the_value_of_the_executed_elite():
  # Toy model: Q = 0 and r_t = -||a_t - target||^2, so an elite's value is
  # sum_t discount^t r_t of its own actions. Gumbel noise forces the second elite by score; the
  # reported value must be that sequence's value, which is below the best elite's.
  model, _, state = _toy_plan_setup()
  cfg = config.PlannerConfig(horizon=2, iterations=2, num_samples=16, num_elites=4,
                             num_pi_trajs=2, discount=0.9)
  noise = planner.draw_noise(model, cfg, jax.random.PRNGKey(3))
  noise = noise._replace(gumbel=jnp.array([0.0, 1e4, 0.0, 0.0]))
  res = planner.plan_with_noise(model, toy.TOY_PARAMS, cfg, state, jnp.zeros(3), noise, True,
                                True)[0]
  r = -np.sum(np.square(np.asarray(res.actions) - np.asarray(model.target)), axis=-1)
  np.testing.assert_allclose(res.value, r[0] + 0.9 * r[1], rtol=1e-5, atol=1e-6)
  best = planner.plan_with_noise(model, toy.TOY_PARAMS, cfg, state, jnp.zeros(3),
                                 noise._replace(gumbel=jnp.array([1e4, 0.0, 0.0, 0.0])), True,
                                 True)[0]
  assert float(best.value) > float(res.value) + 1e-4
