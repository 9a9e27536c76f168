"""Official TD-MPC2 checkpoint conversion, checked against golden vectors produced by running
the official PyTorch implementation (see BUILD_NOTES.md for how they were made)."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import checkpoint
from spec_jax import config
from spec_jax import convert
from spec_jax import numerics
from spec_jax import planner
from spec_jax import world_model

GOLDEN = os.path.join(os.path.dirname(__file__), 'data', 'tdmpc2_golden_small.npz')


@pytest.fixture(scope='module')
def golden():
  g = np.load(GOLDEN)
  sd = {k[3:]: g[k] for k in g.files if k.startswith('sd/')}
  return g, sd


@pytest.fixture(scope='module')
def converted(golden):
  _, sd = golden
  cfg, params, target = convert.convert_state_dict(sd)
  return world_model.WorldModel(cfg), params, target


def test_config_inferred_from_shapes(converted):
  model, params, _ = converted
  c = model.cfg
  assert (c.obs_dim, c.action_dim, c.latent_dim, c.enc_dim, c.mlp_dim, c.num_enc_layers, c.num_q) == (
      7, 3, 32, 48, 40, 3, 5)
  assert convert.model_size_name(c) is None
  template = jax.eval_shape(model.init, jax.random.PRNGKey(0))
  assert jax.tree_util.tree_map(lambda x: x.shape, template) == jax.tree_util.tree_map(
      lambda x: x.shape, params)


def test_heads_match_official_outputs(golden, converted):
  g, _ = golden
  model, p, _ = converted
  tol = dict(rtol=1e-5, atol=1e-5)
  z = model.encode(p, g['obs'])
  np.testing.assert_allclose(z, g['z'], **tol)
  np.testing.assert_allclose(model.next(p, z, g['act']), g['next_z'], **tol)
  np.testing.assert_allclose(model.reward_logits(p, z, g['act']), g['reward_logits'], **tol)
  np.testing.assert_allclose(model.reward(p, z, g['act']), g['reward'][:, 0], **tol)
  np.testing.assert_allclose(model.q_logits(p['Qs'], z, g['act']), g['q_logits'], **tol)
  q = numerics.two_hot_inv(model.q_logits(p['Qs'], z, g['act']), -10.0, 10.0)
  np.testing.assert_allclose(q, g['q_values'][..., 0], **tol)
  a, info = model.pi_with_noise(p, z, g['pi_eps'])
  np.testing.assert_allclose(a, g['pi_action'], **tol)
  np.testing.assert_allclose(info.mean, g['pi_mean'], **tol)
  np.testing.assert_allclose(info.log_std, g['pi_log_std'], **tol)
  np.testing.assert_allclose(info.entropy, g['pi_entropy'], rtol=1e-5, atol=2e-5)
  np.testing.assert_allclose(info.scaled_entropy, g['pi_scaled_entropy'], rtol=1e-5, atol=2e-5)
  np.testing.assert_allclose(numerics.two_hot(g['two_hot_in'][:, 0], 101, -10.0, 10.0),
                             g['two_hot'], atol=1e-6)


def test_planner_matches_official_with_same_noise(golden, converted):
  g, _ = golden
  model, p, _ = converted
  pc = config.PlannerConfig(horizon=3, iterations=3, num_samples=64, num_elites=8, num_pi_trajs=6,
                            temperature=0.5, discount=0.99)
  noise = planner.PlanNoise(pi_eps=g['noise_pi_eps'], sample=g['noise_sample'],
                            value_pi_eps=g['noise_value_pi_eps'], q_idx=g['noise_q_idx'],
                            gumbel=g['noise_gumbel'], act=g['noise_act'])
  state = planner.PlannerState(prev_mean=jnp.asarray(g['plan_prev_mean']))
  res, new_state = planner.plan_with_noise(model, p, pc, state, jnp.asarray(g['plan_obs']), noise,
                                           False, False)
  np.testing.assert_allclose(new_state.prev_mean, g['plan_mean'], atol=1e-4)
  np.testing.assert_allclose(res.action, g['plan_action'], atol=1e-4)


def test_target_qs_and_export(golden, converted, tmp_path):
  _, sd = golden
  model, p, target = converted
  np.testing.assert_array_equal(target['dense_out']['kernel'],
                                np.swapaxes(sd['_target_Qs_params.2.weight'], -1, -2))
  out = checkpoint.export_agent(str(tmp_path / 'exp'), model.cfg, p, config.PlannerConfig())
  model2, p2, _, _ = checkpoint.load_agent(out)
  assert model2 == model
  np.testing.assert_array_equal(p2['encoder']['dense_0']['kernel'], p['encoder']['dense_0']['kernel'])


def test_old_api_layout_is_renamed(golden, converted):
  _, sd = golden
  fields = ('weight', 'bias', 'ln.weight', 'ln.bias')
  old = {k: v for k, v in sd.items() if not k.startswith(('_Qs.', '_target_Qs', '_detach'))}
  for layer in range(3):
    for j, f in enumerate(fields):
      if f'_Qs.params.{layer}.{f}' in sd:
        old[f'_Qs.params.{4 * layer + j}'] = sd[f'_Qs.params.{layer}.{f}']
        old[f'_target_Qs.params.{4 * layer + j}'] = sd[f'_target_Qs_params.{layer}.{f}']
  _, p_old, _ = convert.convert_state_dict(old)
  for a, b in zip(jax.tree_util.tree_leaves(p_old), jax.tree_util.tree_leaves(converted[1])):
    np.testing.assert_array_equal(a, b)


def test_unknown_and_missing_keys_are_listed(golden):
  _, sd = golden
  extra = dict(sd, **{'_mystery.weight': np.zeros(3)})
  with pytest.raises(convert.ConversionError, match='_mystery.weight'):
    convert.convert_state_dict(extra)
  missing = {k: v for k, v in sd.items() if k != '_pi.1.ln.bias'}
  with pytest.raises(convert.ConversionError, match='_pi.1.ln.bias'):
    convert.convert_state_dict(missing)
  with pytest.raises(convert.ConversionError, match='_dynamics.0.weight'):
    convert.convert_state_dict({k: v for k, v in sd.items() if not k.startswith('_dynamics')})
  with pytest.raises(convert.ConversionError, match='multitask'):
    convert.convert_state_dict(dict(sd, **{'_task_emb.weight': np.zeros(2)}))


def test_official_sizes_recognised():
  for size in (1, 5, 19, 48, 317):
    assert convert.model_size_name(config.model_config(size, 67, 21)) == size


def test_torch_file_round_trip(golden, converted, tmp_path):
  torch = pytest.importorskip('torch')
  _, sd = golden
  path = str(tmp_path / 'agent.pt')
  torch.save({'model': {k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()}}, path)
  _, p, _ = convert.convert_state_dict(convert.load_torch_state_dict(path))
  for a, b in zip(jax.tree_util.tree_leaves(p), jax.tree_util.tree_leaves(converted[1])):
    np.testing.assert_array_equal(a, b)
