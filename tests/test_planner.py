"""MPPI planner: bounds, determinism, optimisation on a known problem, vmap, warm start."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import config
from spec_jax import planner
from spec_jax import world_model
import toy

OBS, ACT = 9, 4
SMALL = config.PlannerConfig(horizon=3, iterations=3, num_samples=64, num_elites=8,
                             num_pi_trajs=4)


@pytest.fixture(scope='module')
def agent():
  wm = world_model.WorldModel(config.model_config(1, OBS, ACT))
  params = wm.init(jax.random.PRNGKey(0))
  # Non-zero reward/Q heads so that planning is not trivially flat.
  params = jax.tree_util.tree_map(lambda x: x, params)
  k1, k2 = jax.random.split(jax.random.PRNGKey(9))
  params['reward']['dense_out']['kernel'] = 0.1 * jax.random.normal(
      k1, params['reward']['dense_out']['kernel'].shape)
  params['Qs']['dense_out']['kernel'] = 0.1 * jax.random.normal(
      k2, params['Qs']['dense_out']['kernel'].shape)
  return wm, params


@pytest.fixture(scope='module')
def small_agent():
  """A narrow model (latent 32, mlp 48) with non-zero reward/Q heads, for the tests that run
  the planner eagerly."""
  wm = world_model.WorldModel(config.model_config(1, OBS, ACT, latent_dim=32, mlp_dim=48,
                                                  enc_dim=48))
  return wm, toy.nonzero_heads(wm.init(jax.random.PRNGKey(0)), keys=(21, 22))


def _episodic(wm, params, z0, actions):
  """An episodic copy of (wm, params) whose termination logit is centred on the rows of
  ``actions`` [H, N, A] rolled out from z0: about half of them terminate within H steps."""
  wm = world_model.WorldModel(dataclasses.replace(wm.cfg, episodic=True))
  term = wm.init(jax.random.PRNGKey(4))['termination']
  out = dict(term['dense_out'],
             kernel=jax.random.normal(jax.random.PRNGKey(5), term['dense_out']['kernel'].shape))
  params = dict(params, termination=dict(term, dense_out=out))
  zs = jax.vmap(lambda a: planner.rollout_latents(wm, params, z0, a))(
      jnp.swapaxes(actions, 0, 1))[:, 1:]                                  # [N, H, Z]
  peak = jnp.max(jax.scipy.special.logit(wm.termination(params, zs)), axis=1)
  out['bias'] = out['bias'] - jnp.median(peak) - 1e-3
  return wm, params


def _plan(agent, key, obs=None, t0=True, eval_mode=False, state=None):
  wm, params = agent
  obs = jnp.linspace(-1, 1, OBS) if obs is None else obs
  state = planner.init_state(SMALL, ACT) if state is None else state
  return planner.plan(wm, params, SMALL, state, obs, key, t0, eval_mode)


def test_shapes_and_bounds(agent):
  res, state = _plan(agent, jax.random.PRNGKey(1))
  assert res.action.shape == (ACT,) and res.actions.shape == (3, ACT)
  assert res.latents.shape == (4, 128) and res.mean.shape == (3, ACT)
  assert state.prev_mean.shape == (3, ACT)
  assert bool(jnp.all(jnp.abs(res.actions) <= 1.0))
  np.testing.assert_array_equal(res.action, res.actions[0])
  assert bool(jnp.all(res.std >= SMALL.min_std - 1e-6)) and bool(jnp.all(res.std <= SMALL.max_std))


def test_latent_rollout_is_dynamics_of_chosen_actions(agent):
  wm, params = agent
  res, _ = _plan(agent, jax.random.PRNGKey(1))
  z = wm.encode(params, jnp.linspace(-1, 1, OBS))
  np.testing.assert_allclose(res.latents[0], z, atol=1e-6)
  for t in range(3):
    z = wm.next(params, z, res.actions[t])
    np.testing.assert_allclose(res.latents[t + 1], z, atol=1e-5)


def test_deterministic_for_fixed_key(agent):
  a, _ = _plan(agent, jax.random.PRNGKey(3))
  b, _ = _plan(agent, jax.random.PRNGKey(3))
  c, _ = _plan(agent, jax.random.PRNGKey(4))
  np.testing.assert_array_equal(a.actions, b.actions)
  assert not np.allclose(a.actions, c.actions)


def test_eval_mode_returns_elite_first_action(agent):
  a, _ = _plan(agent, jax.random.PRNGKey(3), eval_mode=True)
  b, _ = _plan(agent, jax.random.PRNGKey(3), eval_mode=False)
  # Two compiled programs: equal up to float rounding (XLA may fuse them differently).
  np.testing.assert_allclose(a.actions[1:], b.actions[1:], atol=1e-5)
  assert not np.allclose(a.action, b.action)  # exploration noise on the first action


def test_warm_start_used_only_when_not_t0(agent):
  s1 = planner.PlannerState(prev_mean=jnp.zeros((3, ACT)))
  s2 = planner.PlannerState(prev_mean=0.9 * jnp.ones((3, ACT)))
  key = jax.random.PRNGKey(5)
  a1, _ = _plan(agent, key, t0=True, state=s1)
  a2, _ = _plan(agent, key, t0=True, state=s2)
  np.testing.assert_array_equal(a1.actions, a2.actions)
  b1, _ = _plan(agent, key, t0=False, state=s1)
  b2, _ = _plan(agent, key, t0=False, state=s2)
  assert not np.allclose(b1.mean, b2.mean)
  # With t0=False and a zero previous mean the shifted mean is zero, as at t0.
  np.testing.assert_array_equal(b1.actions, a1.actions)


def test_improves_over_random_on_known_optimum():
  model = toy.ToyModel()
  cfg = config.PlannerConfig(horizon=3, iterations=8, num_samples=512, num_elites=32,
                             num_pi_trajs=8, temperature=5.0, discount=1.0)
  state = planner.init_state(cfg, 3)
  target = jnp.asarray(model.target)
  rand = jax.random.uniform(jax.random.PRNGKey(99), (1000, 3, 3), minval=-1, maxval=1)
  rand_value = -jnp.sum(jnp.square(rand - target), axis=(1, 2))
  errors = []
  for k in range(5):
    res, _ = planner.plan(model, toy.TOY_PARAMS, cfg, state, jnp.zeros(3), jax.random.PRNGKey(k),
                          True, True)
    plan_value = -jnp.sum(jnp.square(res.actions - target))
    assert plan_value > jnp.percentile(rand_value, 99)
    errors.append(float(jnp.max(jnp.abs(res.mean - target))))
  # The optimum is a_t = target (value 0); MPPI gets close on most seeds.
  assert np.median(errors) < 0.15


def test_temperature_is_traced_and_matters():
  model = toy.ToyModel()
  state = planner.init_state(SMALL, 3)
  fn = jax.jit(jax.vmap(lambda temp: planner.plan(model, toy.TOY_PARAMS, SMALL, state,
                                                  jnp.zeros(3), jax.random.PRNGKey(0), True,
                                                  True, temp)[0].mean))
  means = fn(jnp.array([0.01, 50.0]))
  assert means.shape == (2, 3, 3)
  assert not np.allclose(means[0], means[1])


def test_vmap_over_envs_equals_single_calls(agent):
  wm, params = agent
  obs = jax.random.normal(jax.random.PRNGKey(0), (2, OBS))
  state = planner.PlannerState(prev_mean=jnp.stack([jnp.zeros((3, ACT)), 0.5 * jnp.ones((3, ACT))]))
  key = jax.random.PRNGKey(11)
  t0 = jnp.array([True, False])
  batch, bstate = planner.plan_batch(wm, params, SMALL, state, obs, key, t0)
  keys = jax.random.split(key, 2)
  for i in range(2):
    single, sstate = planner.plan(wm, params, SMALL, jax.tree_util.tree_map(lambda x: x[i], state),
                                  obs[i], keys[i], t0[i])
    np.testing.assert_allclose(batch.actions[i], single.actions, atol=1e-5)
    np.testing.assert_allclose(batch.latents[i], single.latents, atol=1e-5)
    np.testing.assert_allclose(bstate.prev_mean[i], sstate.prev_mean, atol=1e-5)


def test_bad_inputs(agent):
  wm, params = agent
  state = planner.init_state(SMALL, ACT)
  with pytest.raises(ValueError, match='obs must be'):
    planner.plan(wm, params, SMALL, state, jnp.ones(OBS + 1), jax.random.PRNGKey(0), True)
  with pytest.raises(ValueError, match='num_elites'):
    config.PlannerConfig(num_samples=16, num_elites=32, num_pi_trajs=0)
  with pytest.raises(ValueError, match='temperature'):
    config.PlannerConfig(temperature=0.0)
  for bad in (0.01, 2.5):   # outside [min_std, max_std] = [0.05, 2.0]
    with pytest.raises(ValueError, match='init_std'):
      config.PlannerConfig(init_std=bad)
  assert config.PlannerConfig(init_std=0.05).init_std == 0.05


def test_planner_defaults_match_official():
  cfg = config.planner_config(action_dim=21, episode_length=500)
  assert (cfg.horizon, cfg.iterations, cfg.num_samples, cfg.num_elites, cfg.num_pi_trajs) == (
      3, 8, 512, 64, 24)
  assert cfg.discount == pytest.approx(0.99)
  assert config.planner_config(action_dim=1, episode_length=500).iterations == 6
  assert config.discount_for_episode(1000) == pytest.approx(0.995)
  assert config.discount_for_episode(50) == pytest.approx(0.95)


def test_plan_flops_hand_counted():
  # O=2, Z=4, A=1, enc 3 (one hidden layer), mlp 5, 3 bins; H=2, N=4 samples (P=1), I=2.
  # encoder 2*(2*3+3*4)=36; dynamics 2*(5*5+5*5+5*4)=140; reward = Q = 2*(25+25+5*3)=130;
  # pi 2*(4*5+25+5*2)=110; per sample 2*(130+140)+110+2*130=910;
  # total 36 + P*H*(110+140)=500 + I*N*910=7280 + H*140=280 -> 8096.
  mcfg = config.ModelConfig(obs_dim=2, action_dim=1, latent_dim=4, enc_dim=3, mlp_dim=5,
                            num_bins=3, simnorm_dim=2)
  pcfg = config.PlannerConfig(horizon=2, num_samples=4, num_pi_trajs=1, iterations=2,
                              num_elites=2)
  assert planner.plan_flops(mcfg, pcfg, official=True) == 8096
  # As plan runs: the P = 1 policy-prior row's rewards along the policy roll-out, once:
  # P * H * reward = 260 instead of I * P * H * (reward + dynamics) = 1080, i.e.
  # - P * H * (I * dynamics + (I - 1) * reward) = - 2 * (2 * 140 + 130) = - 820; the
  # I * (N - P) = 6 sampled rows take z0's share of the first dynamics and reward layer
  # (2 * 2 * (4 * 5) = 80) computed once: - 5 * 80 = - 400. 8096 - 820 - 400 = 6876.
  assert planner.plan_flops(mcfg, pcfg) == 6876
  # Humanoid (obs 67, action 21), official MPPI: 18.0 GFLOP (1M) and 48.3 GFLOP (5M) per call.
  # 5M: za = 533, dynamics 2 * (533 * 512 + 512 * 512 + 512 * 512) = 1_594_368, reward
  # 2 * (533 * 512 + 512 * 512 + 512 * 101) = 1_173_504; P = 24, H = 3, I = 8, N = 512.
  hum = config.planner_config(21, 500)
  assert planner.plan_flops(config.model_config(5, 67, 21), hum, official=True) == 48_294_552_064
  assert round(planner.plan_flops(config.model_config(1, 67, 21), hum, official=True) / 1e9,
               1) == 18.0
  assert planner.plan_flops(config.model_config(5, 67, 21), hum) == (
      48_294_552_064 - 24 * 3 * (8 * 1_594_368 + 7 * 1_173_504) - 3903 * 4 * 512 * 512)


# single: -m slow (its path is also checked by test_estimate_value_takes_step_zero_from_the_shares)
@pytest.mark.parametrize('multitask', [pytest.param(False, marks=pytest.mark.slow), True],
                         ids=['single', 'multitask'])
def test_latent_share_plus_action_share_equals_the_first_layer(multitask):
  kw = dict(num_tasks=3, task_dim=8, action_dims=(2, 4, 3)) if multitask else {}
  wm = world_model.WorldModel(config.model_config(1, OBS, ACT, latent_dim=32, mlp_dim=48,
                                                  enc_dim=48, **kw))
  params = wm.init(jax.random.PRNGKey(3))
  params['reward']['dense_out']['kernel'] = 0.3 * jax.random.normal(
      jax.random.PRNGKey(4), params['reward']['dense_out']['kernel'].shape)
  task = dict(task=1) if multitask else {}
  z = wm.encode(params, jnp.cos(jnp.arange(OBS, dtype=jnp.float32)), **task)
  a = jax.random.uniform(jax.random.PRNGKey(5), (6, ACT), minval=-1, maxval=1)
  zs = jnp.broadcast_to(z, (6, z.shape[-1]))
  dyn, rew = wm.latent_share(params, 'dynamics', z, **task), wm.latent_share(params, 'reward', z,
                                                                               **task)
  assert dyn.shape == rew.shape == (48,)
  np.testing.assert_allclose(wm.next_from_share(params, dyn, a), wm.next(params, zs, a, **task),
                             atol=1e-5)
  np.testing.assert_allclose(wm.reward_from_share(params, rew, a),
                             wm.reward(params, zs, a, **task), rtol=1e-5, atol=1e-5)


def test_estimate_value_takes_step_zero_from_the_shares(agent):
  wm, params = agent
  z0 = wm.encode(params, jnp.sin(jnp.arange(OBS, dtype=jnp.float32)))
  N = 16
  actions = jax.random.uniform(jax.random.PRNGKey(1), (SMALL.horizon, N, ACT), minval=-1,
                               maxval=1)
  eps, q_idx = jax.random.normal(jax.random.PRNGKey(2), (N, ACT)), jnp.array([0, 1])
  ref = planner.estimate_value(wm, params, SMALL, jnp.broadcast_to(z0, (N, z0.shape[0])), actions,
                               eps, q_idx)
  shares = planner._z0_shares(wm, params, z0, None)
  # With shares, the rows of z are not read at step 0: garbage there changes nothing.
  junk = jax.random.normal(jax.random.PRNGKey(3), (N, z0.shape[0]))
  got = planner.estimate_value(wm, params, SMALL, junk, actions, eps, q_idx, shares=shares)
  np.testing.assert_allclose(got, ref, rtol=5e-5, atol=5e-5)  # float32 rounding
  assert not np.allclose(planner.estimate_value(wm, params, SMALL, junk, actions, eps, q_idx),
                         ref, atol=1e-3)


def test_plan_rolls_out_the_policy_prior_rows_once_and_shares_z0(small_agent, monkeypatch):
  # Run eagerly (no jit): arrays outside the MPPI fori_loop are concrete, inside it traced (the
  # body is traced once). The P policy-prior rows: one roll-out outside the loop; the N - P
  # sampled rows: one inside it, given z0's shares.
  wm, params = small_agent
  seen = []
  real_rollout, real_prior = planner.rollout_return, planner.policy_prior_rollout

  def spy_rollout(model, params, cfg, z, actions, task=None, shares=None):
    seen.append(('sampled', z.shape[0], isinstance(actions, jax.core.Tracer), shares))
    return real_rollout(model, params, cfg, z, actions, task, shares)

  def spy_prior(model, params, cfg, z, pi_eps, task=None):
    seen.append(('prior', z.shape[0], isinstance(z, jax.core.Tracer), None))
    return real_prior(model, params, cfg, z, pi_eps, task)

  monkeypatch.setattr(planner, 'rollout_return', spy_rollout)
  monkeypatch.setattr(planner, 'policy_prior_rollout', spy_prior)
  obs = jnp.sin(jnp.arange(OBS, dtype=jnp.float32))
  st = planner.init_state(SMALL, ACT)
  noise = planner.draw_noise(wm, SMALL, jax.random.PRNGKey(0))
  planner.plan_with_noise.__wrapped__(wm, params, SMALL, st, obs, noise, True, True)
  P, N = SMALL.num_pi_trajs, SMALL.num_samples
  assert [r[:3] for r in seen] == [('prior', P, False), ('sampled', N - P, True)]
  assert seen[1][3] is not None and seen[1][3][0].shape == (wm.cfg.mlp_dim,)


@pytest.mark.parametrize('episodic', [False, True], ids=['continuing', 'episodic'])
def test_policy_prior_rollout_equals_policy_rollout_then_rollout_return(small_agent, episodic):
  wm, params = small_agent
  z0 = wm.encode(params, jnp.cos(jnp.arange(OBS, dtype=jnp.float32)))
  z = jnp.broadcast_to(z0, (8, z0.shape[0]))
  eps = jax.random.normal(jax.random.PRNGKey(6), (SMALL.horizon, 8, ACT))
  actions = planner.policy_rollout(wm, params, z, eps)
  if episodic:  # the termination head does not change the policy's actions
    wm, params = _episodic(wm, params, z0, actions)
  got_actions, part = planner.policy_prior_rollout(wm, params, SMALL, z, eps)
  np.testing.assert_allclose(got_actions, actions, atol=1e-6)
  ref = planner.rollout_return(wm, params, SMALL, z, actions)
  for got, want in zip(part, ref):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  assert not np.allclose(part.ret, 0.0)
  if episodic:
    assert 0 < float(part.done.sum()) < 8


@pytest.mark.parametrize('init_std,matmul_dtype', [(None, 'float32'), (0.3, 'float32'),
                                                    (None, 'bfloat16')],
                         ids=['std-max', 'std-0.3', 'bfloat16'])
def test_one_iteration_plan_equals_a_reference_built_from_the_public_pieces(small_agent,
                                                                            init_std,
                                                                            matmul_dtype):
  # iterations = 1, so the sampled actions are known: init_std None at t0 samples around mean 0
  # with max_std; init_std 0.3 (not t0, shift 0) samples around the warm start with std 0.3.
  # Reference: the official order of work (policy roll-out, then every row's value via
  # estimate_value, top-k elites, score weights, the Gumbel-max elite); the planner must
  # choose the same sequence. matmul_dtype 'bfloat16': the reference's roll-outs and values
  # run on the bfloat16 model (full first layers, not the planner's z0 shares), while the
  # encoder and the chosen plan's latents stay float32. The model passed to the planner has the
  # OTHER matmul_dtype: the config alone decides.
  wm, params = small_agent
  pc = config.PlannerConfig(horizon=3, iterations=1, num_samples=24, num_elites=4,
                            num_pi_trajs=8, init_std=init_std, matmul_dtype=matmul_dtype)
  obs = jnp.cos(jnp.arange(OBS, dtype=jnp.float32))
  noise = planner.draw_noise(wm, pc, jax.random.PRNGKey(5))
  warm = 0.5 * jnp.sin(jnp.arange(3 * ACT, dtype=jnp.float32)).reshape(3, ACT)
  other = wm.with_matmul_dtype('bfloat16' if matmul_dtype == 'float32' else 'float32')
  res, _ = planner.plan_with_noise(other, params, pc, planner.PlannerState(prev_mean=warm), obs,
                                   noise, init_std is None, True, shift=0)
  z0 = wm.encode(params, obs)
  np.testing.assert_allclose(res.latents, planner.rollout_latents(wm, params, z0, res.actions),
                             atol=1e-5)
  ref_wm = wm.with_matmul_dtype(matmul_dtype)
  P, N = pc.num_pi_trajs, pc.num_samples
  pi = planner.policy_rollout(ref_wm, params, jnp.broadcast_to(z0, (P, z0.shape[0])),
                              noise.pi_eps)
  if init_std is None:
    sampled = jnp.clip(pc.max_std * noise.sample[0], -1.0, 1.0)
  else:
    sampled = jnp.clip(warm[:, None] + init_std * noise.sample[0], -1.0, 1.0)
  actions = jnp.concatenate([pi, sampled], axis=1)                         # [H, N, A]
  value_of = lambda model: planner.estimate_value(
      model, params, pc, jnp.broadcast_to(z0, (N, z0.shape[0])), actions, noise.value_pi_eps[0],
      noise.q_idx[0])
  value = value_of(ref_wm)
  elite_value, elite_idx = jax.lax.top_k(value, pc.num_elites)
  score = jax.nn.softmax(pc.temperature * elite_value)
  pick = elite_idx[jnp.argmax(jnp.log(score) + noise.gumbel)]
  np.testing.assert_allclose(res.actions, actions[:, pick], atol=1e-5)
  mean = jnp.einsum('e,hea->ha', score, actions[:, elite_idx])
  np.testing.assert_allclose(res.mean, mean, atol=1e-5)
  np.testing.assert_allclose(res.value, value[pick], rtol=1e-5, atol=1e-5)
  if matmul_dtype == 'bfloat16':   # the arithmetic shows at this tolerance
    assert abs(float(value_of(wm)[pick] - value[pick])) > 1e-4
  if init_std is None:  # the policy rows take part in the race
    assert int(pick) < P or bool(jnp.any(elite_idx < P))


def test_plan_without_policy_prior_rows(small_agent):
  # num_pi_trajs = 0: the policy-prior group is empty (zero rows through the z0-share path).
  # The plan is finite and the same jitted and eager.
  wm, params = small_agent
  pc = config.PlannerConfig(horizon=3, iterations=3, num_samples=64, num_elites=8,
                            num_pi_trajs=0)
  obs, st = jnp.linspace(-1, 1, OBS), planner.init_state(pc, ACT)
  noise = planner.draw_noise(wm, pc, jax.random.PRNGKey(1))
  assert noise.pi_eps.shape == (3, 0, ACT)
  jitted, _ = planner.plan_with_noise(wm, params, pc, st, obs, noise, True, True)
  eager, _ = planner.plan_with_noise.__wrapped__(wm, params, pc, st, obs, noise, True, True)
  assert np.all(np.isfinite(jitted.actions)) and np.isfinite(float(jitted.value))
  np.testing.assert_allclose(jitted.actions, eager.actions, atol=1e-5)
  np.testing.assert_allclose(jitted.value, eager.value, rtol=1e-4)


# continuing: -m slow (the episodic case checks the same concatenation and more)
@pytest.mark.parametrize('episodic', [pytest.param(False, marks=pytest.mark.slow), True],
                         ids=['continuing', 'episodic'])
def test_value_of_two_row_groups_equals_the_value_of_all_rows(small_agent, episodic):
  # The planner rolls out the policy-prior rows and the sampled rows apart and concatenates
  # them before the terminal value; row i of pi_eps, done and ret must stay with action row i.
  wm, params = small_agent
  z0 = wm.encode(params, jnp.cos(jnp.arange(OBS, dtype=jnp.float32)))
  N, P = 12, 5
  z = jnp.broadcast_to(z0, (N, z0.shape[0]))
  actions = jax.random.uniform(jax.random.PRNGKey(1), (SMALL.horizon, N, ACT), minval=-1,
                               maxval=1)
  if episodic:  # a termination head that fires for some rows and not others
    wm, params = _episodic(wm, params, z0, actions)
  eps, q_idx = jax.random.normal(jax.random.PRNGKey(2), (N, ACT)), jnp.array([1, 0])
  ref = planner.estimate_value(wm, params, SMALL, z, actions, eps, q_idx)
  parts = [planner.rollout_return(wm, params, SMALL, z[rows], actions[:, rows])
           for rows in (slice(0, P), slice(P, N))]
  joined = planner._concat_rollouts(*parts)
  got = planner.terminal_value(wm, params, joined, eps, q_idx)
  np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
  assert float(parts[0].disc) == pytest.approx(SMALL.discount ** SMALL.horizon)
  if episodic:
    assert 0 < float(parts[0].done.sum()) < P and 0 < float(parts[1].done.sum()) < N - P

