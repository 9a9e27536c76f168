"""Shapes, values and initialisation of every world-model head."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import config
from spec_jax import numerics
from spec_jax import world_model

OBS, ACT = 11, 4


def _linear(i, o):
  return i * o + o


def _hand_count(size, obs_dim, act_dim):
  """Parameter count of the official architecture, worked out layer by layer."""
  c = config.MODEL_SIZES[size]
  enc, mlp, lat, nq = c['enc_dim'], c['mlp_dim'], c['latent_dim'], c['num_q']
  n_enc_hidden = max(c['num_enc_layers'] - 1, 1)
  dims = [obs_dim] + [enc] * n_enc_hidden
  encoder = sum(_linear(a, b) + 2 * b for a, b in zip(dims[:-1], dims[1:]))
  encoder += _linear(enc, lat) + 2 * lat
  two_hidden = lambda i: _linear(i, mlp) + 2 * mlp + _linear(mlp, mlp) + 2 * mlp
  za = lat + act_dim
  dynamics = two_hidden(za) + _linear(mlp, lat) + 2 * lat
  reward = two_hidden(za) + _linear(mlp, 101)
  pi = two_hidden(lat) + _linear(mlp, 2 * act_dim)
  qs = nq * (two_hidden(za) + _linear(mlp, 101))
  return encoder + dynamics + reward + pi + qs


@pytest.fixture(scope='module')
def small():
  wm = world_model.WorldModel(config.model_config(1, OBS, ACT))
  return wm, wm.init(jax.random.PRNGKey(0))


@pytest.mark.parametrize('size', [1, 5, 19, 48, 317])
def test_param_count_matches_official_architecture(size):
  wm = world_model.WorldModel(config.model_config(size, 67, 21))
  shapes = jax.eval_shape(wm.init, jax.random.PRNGKey(0))
  assert world_model.num_params(shapes) == _hand_count(size, 67, 21)


def test_model_size_roughly_named():
  for size in (1, 5, 19, 48):
    wm = world_model.WorldModel(config.model_config(size, 67, 21))
    n = world_model.num_params(jax.eval_shape(wm.init, jax.random.PRNGKey(0))) / 1e6
    assert 0.75 * size < n < 1.3 * size


def test_head_shapes(small):
  wm, p = small
  obs = jax.random.normal(jax.random.PRNGKey(1), (5, OBS))
  a = jnp.zeros((5, ACT))
  z = wm.encode(p, obs)
  assert z.shape == (5, 128)
  assert wm.next(p, z, a).shape == (5, 128)
  assert wm.reward_logits(p, z, a).shape == (5, 101)
  assert wm.reward(p, z, a).shape == (5,)
  act, info = wm.pi(p, z, jax.random.PRNGKey(2))
  assert act.shape == (5, ACT) and info.mean.shape == (5, ACT) and info.entropy.shape == (5, 1)
  assert wm.q_logits(p['Qs'], z, a).shape == (2, 5, 101)
  assert wm.q_pair(p['Qs'], z, a, jax.random.PRNGKey(3)).shape == (5,)


def test_latents_are_simnormed(small):
  wm, p = small
  obs = 3 * jax.random.normal(jax.random.PRNGKey(1), (7, OBS))
  z = wm.encode(p, obs)
  np.testing.assert_allclose(z.reshape(7, 16, 8).sum(-1), 1.0, atol=1e-5)
  z2 = wm.next(p, z, jnp.ones((7, ACT)))
  np.testing.assert_allclose(z2.reshape(7, 16, 8).sum(-1), 1.0, atol=1e-5)


def test_zero_initialised_heads_decode_to_zero(small):
  wm, p = small
  np.testing.assert_array_equal(p['reward']['dense_out']['kernel'], 0.0)
  np.testing.assert_array_equal(p['Qs']['dense_out']['kernel'], 0.0)
  z = wm.encode(p, jnp.ones((3, OBS)))
  np.testing.assert_allclose(wm.reward(p, z, jnp.ones((3, ACT))), 0.0, atol=1e-6)
  np.testing.assert_allclose(wm.q_pair(p['Qs'], z, jnp.ones((3, ACT)), jax.random.PRNGKey(0)),
                             0.0, atol=1e-6)


def test_init_statistics(small):
  _, p = small
  k = np.asarray(p['dynamics']['dense_0']['kernel'])
  assert abs(k.std() - 0.02) < 0.002 and abs(k.mean()) < 0.002
  np.testing.assert_array_equal(p['dynamics']['dense_0']['bias'], 0.0)
  np.testing.assert_array_equal(p['dynamics']['ln_0']['scale'], 1.0)
  # Members of the ensemble are initialised independently.
  q0 = np.asarray(p['Qs']['dense_0']['kernel'])
  assert not np.allclose(q0[0], q0[1])


def test_policy_hand_values(small):
  wm, _ = small
  # Zero head output and zero noise: mean 0, log_std = -10 + 0.5 * 12 = -4, action 0.
  act, info = wm.pi_from_eps(jnp.zeros((1, 2 * ACT)), jnp.zeros((1, ACT)))
  np.testing.assert_allclose(act, 0.0)
  np.testing.assert_allclose(info.log_std, -4.0)
  log_prob = ACT * (4.0 - 0.9189385175704956) - ACT * math.log(1 + 1e-6)
  np.testing.assert_allclose(info.entropy, [[-log_prob]], rtol=1e-5)
  # scaled_entropy = -log_prob * (A * log_prob_unsquashed) / log_prob.
  np.testing.assert_allclose(info.scaled_entropy, [[-ACT * ACT * (4.0 - 0.9189385175704956)]],
                             rtol=1e-4)


def test_policy_actions_bounded(small):
  wm, p = small
  z = wm.encode(p, 10 * jax.random.normal(jax.random.PRNGKey(0), (64, OBS)))
  act, _ = wm.pi(p, z, jax.random.PRNGKey(1))
  assert bool(jnp.all(jnp.abs(act) <= 1.0))


def test_q_dropout_only_with_key(small):
  wm, p = small
  q = jax.tree_util.tree_map(lambda x: x + 0.05, p['Qs'])
  z = wm.encode(p, jnp.ones((4, OBS)))
  a = jnp.zeros((4, ACT))
  eval1 = wm.q_logits(q, z, a)
  np.testing.assert_array_equal(eval1, wm.q_logits(q, z, a))
  train = wm.q_logits(q, z, a, dropout_key=jax.random.PRNGKey(5))
  assert not np.allclose(eval1, train)


def test_q_pair_min_le_avg(small):
  wm, p = small
  q = jax.tree_util.tree_map(lambda x: x + 0.01 * jnp.arange(x.size).reshape(x.shape) / x.size,
                             p['Qs'])
  z = wm.encode(p, jnp.ones((4, OBS)))
  a = jnp.zeros((4, ACT))
  k = jax.random.PRNGKey(0)
  assert bool(jnp.all(wm.q_pair(q, z, a, k, 'min') <= wm.q_pair(q, z, a, k, 'avg') + 1e-6))
  with pytest.raises(ValueError, match='reduce'):
    wm.q_pair(q, z, a, k, 'max')


def test_bad_inputs_give_clear_errors(small):
  wm, p = small
  with pytest.raises(ValueError, match='expected last dimension 11'):
    wm.encode(p, jnp.ones((2, OBS + 1)))
  z = wm.encode(p, jnp.ones((2, OBS)))
  with pytest.raises(ValueError, match='action a'):
    wm.next(p, z, jnp.ones((2, ACT + 2)))
  with pytest.raises(ValueError, match='Unknown model_size'):
    config.model_config(7, OBS, ACT)
  with pytest.raises(ValueError, match='simnorm_dim'):
    config.ModelConfig(obs_dim=3, action_dim=2, latent_dim=30)


def _bf16(x):
  """x rounded to bfloat16, back in float32."""
  return jnp.asarray(x, jnp.bfloat16).astype(jnp.float32)


def _torch_layer_norm(x, p):
  mu = x.mean(-1, keepdims=True)
  var = jnp.square(x - mu).mean(-1, keepdims=True)
  return (x - mu) / jnp.sqrt(var + 1e-5) * p['scale'] + p['bias']


def _bf16_mlp_by_hand(p, x, simnorm_dim=None):
  """A TD-MPC2 MLP with the operands of every product rounded to bfloat16 (float32 sums),
  LayerNorm, Mish and SimNorm in float32: dense_i -> ln_i -> Mish, then dense_out (-> ln_out ->
  SimNorm)."""
  hidden = sorted(k for k in p if k.startswith('dense_') and k != 'dense_out')
  for name in hidden:
    i = name.split('_')[1]
    x = _bf16(x) @ _bf16(p[name]['kernel']) + _bf16(p[name]['bias'])
    x = numerics.mish(_torch_layer_norm(x, p[f'ln_{i}']))
  x = _bf16(x) @ _bf16(p['dense_out']['kernel']) + _bf16(p['dense_out']['bias'])
  if simnorm_dim is not None:
    x = numerics.simnorm(_torch_layer_norm(x, p['ln_out']), simnorm_dim)
  return x


def test_bfloat16_matmuls_round_operands_and_accumulate_in_float32():
  wm = world_model.WorldModel(config.model_config(1, OBS, ACT, latent_dim=32, mlp_dim=48,
                                                  enc_dim=48, episodic=True))
  fast = wm.with_matmul_dtype('bfloat16')

  @jax.jit
  def make_params(key):   # random weights AND biases (TD-MPC2 initialises biases to 0)
    init = wm.init(key)
    leaves, tree = jax.tree_util.tree_flatten(init)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    return jax.tree_util.tree_unflatten(
        tree, [x + 0.1 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])

  params = make_params(jax.random.PRNGKey(0))
  z = jax.random.normal(jax.random.PRNGKey(2), (5, 32))
  a = jax.random.uniform(jax.random.PRNGKey(4), (5, ACT), minval=-1, maxval=1)
  obs = jax.random.normal(jax.random.PRNGKey(3), (5, OBS))

  @jax.jit
  def outputs(params):
    za, z0 = jnp.concatenate([z, a], -1), jnp.broadcast_to(z[0], z.shape)
    q0 = jax.tree_util.tree_map(lambda x: x[0], params['Qs'])
    heads = {   # name: (the bfloat16 model's output, input, params, SimNorm group)
        'encoder': (fast.encode(params, obs), obs, params['encoder'], 8),
        'dynamics': (fast.next(params, z, a), za, params['dynamics'], 8),
        'reward': (fast.reward_logits(params, z, a), za, params['reward'], None),
        'pi': (fast.pi_net.apply({'params': params['pi']}, z), z, params['pi'], None),
        'q': (fast.q_logits(params['Qs'], z, a)[0], za, q0, None),
        'termination': (fast.termination_net.apply({'params': params['termination']}, z), z,
                        params['termination'], None)}
    pairs = {name: (got, _bf16_mlp_by_hand(p, x, g)) for name, (got, x, p, g) in heads.items()}
    # The planner's split first layer (z0's share + the actions' share) vs the full layer.
    pairs['dynamics from shares'] = (
        fast.next_from_share(params, fast.latent_share(params, 'dynamics', z[0]), a),
        fast.next(params, z0, a))
    pairs['reward from shares'] = (
        fast.reward_from_share(params, fast.latent_share(params, 'reward', z[0]), a),
        fast.reward(params, z0, a))
    return pairs, wm.pi_net.apply({'params': params['pi']}, z)

  pairs, exact_pi = outputs(params)
  for name, (got, want) in pairs.items():
    assert got.dtype == jnp.float32, name
    np.testing.assert_allclose(got, want, rtol=1e-4 if 'reward' in name else 0, atol=3e-5,
                               err_msg=name)
  # The rounding shows at this tolerance (the float32 head against the hand-worked one).
  assert np.abs(np.asarray(exact_pi - pairs['pi'][1])).max() > 3e-4
  assert wm.with_matmul_dtype('float32') == wm and wm.matmul_dtype is None
  assert world_model.WorldModel(wm.cfg, matmul_dtype='float32') == wm
  with pytest.raises(ValueError, match='matmul_dtype'):
    world_model.WorldModel(wm.cfg, matmul_dtype='float16')
