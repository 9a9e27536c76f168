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


def _replay_official_plan(g, model, p, task=None):
  """planner.plan_with_noise fed the official planner's recorded draws (the generator's
  planner settings). Returns (PlanResult, PlannerState)."""
  pc = config.PlannerConfig(horizon=3, iterations=3, num_samples=64, num_elites=8, num_pi_trajs=6,
                            temperature=0.5, discount=0.99)
  noise = planner.PlanNoise(pi_eps=g['noise_pi_eps'], sample=g['noise_sample'],
                            value_pi_eps=g['noise_value_pi_eps'], q_idx=g['noise_q_idx'],
                            gumbel=g['noise_gumbel'], act=g['noise_act'])
  state = planner.PlannerState(prev_mean=jnp.asarray(g['plan_prev_mean']))
  return planner.plan_with_noise(model, p, pc, state, jnp.asarray(g['plan_obs']), noise, False,
                                 False, task=task)


def test_planner_matches_official_with_same_noise(golden, converted):
  g, _ = golden
  model, p, _ = converted
  res, new_state = _replay_official_plan(g, model, p)
  np.testing.assert_allclose(new_state.prev_mean, g['plan_mean'], atol=1e-4)
  np.testing.assert_allclose(res.action, g['plan_action'], atol=1e-4)


def test_target_qs_and_export(golden, converted, tmp_path):
  _, sd = golden
  model, p, target = converted
  np.testing.assert_array_equal(target['dense_out']['kernel'],
                                np.swapaxes(sd['_target_Qs_params.2.weight'], -1, -2))
  pcfg = config.PlannerConfig(matmul_dtype='bfloat16')   # a non-default field round-trips
  out = checkpoint.export_agent(str(tmp_path / 'exp'), model.cfg, p, pcfg)
  model2, p2, pcfg2, _ = checkpoint.load_agent(out)
  assert model2 == model and pcfg2 == pcfg
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
  with pytest.raises(convert.ConversionError, match='_task_emb.weight must be'):
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


# ---- issue 13: every public layout ----------------------------------------------------------
# name -> (file, layout, tasks, termination head, convert kwargs); see BUILD_NOTES "Official
# checkpoint layouts (issue 13)" for the revisions that produced them.
LAYOUT_GOLDENS = {
    'v1': ('tdmpc2_golden_v1', 'first-release', 0, None, {}),
    'v1_episodic': ('tdmpc2_golden_v1_episodic', 'first-release', 0, '_terminated', {}),
    'v1_mt': ('tdmpc2_golden_v1_mt', 'first-release', 3, None, dict(action_dims=(3, 2, 1))),
    'v2': ('tdmpc2_golden_v2', 'tensordict-2024', 0, None, {}),
    'episodic': ('tdmpc2_golden_episodic', 'tensordict', 0, '_termination', {}),
    'mt': ('tdmpc2_golden_mt', 'tensordict', 3, None, {}),
}


def _load_layout(name):
  """Golden npz -> (arrays, state dict); duplicated Q copies are stored once (dup/ -> source)."""
  g = np.load(os.path.join(os.path.dirname(__file__), 'data', LAYOUT_GOLDENS[name][0] + '.npz'))
  sd = {k[3:]: g[k] for k in g.files if k.startswith('sd/')}
  sd.update({k[4:]: sd[str(g[k])] for k in g.files if k.startswith('dup/')})
  return g, sd


@pytest.fixture(scope='module', params=sorted(LAYOUT_GOLDENS))
def layout_case(request):
  g, sd = _load_layout(request.param)
  cfg, params, target = convert.convert_state_dict(sd, **LAYOUT_GOLDENS[request.param][4])
  return request.param, g, sd, world_model.WorldModel(cfg), params, target


def test_layout_detected(layout_case):
  name, _, sd, model, params, _ = layout_case
  _, layout_name, tasks, term, _ = LAYOUT_GOLDENS[name]
  layout = convert.detect_layout(sd)
  assert (layout.name, layout.num_tasks, layout.termination) == (layout_name, tasks, term)
  assert model.cfg.num_tasks == tasks and model.cfg.episodic == (term is not None)
  assert ('termination' in params) == (term is not None)


def test_every_layout_heads_match_official(layout_case):
  """All heads, decoded by the converted model, equal the official code of that revision."""
  _, g, _, m, p, target = layout_case
  tol = dict(rtol=1e-5, atol=1e-5)
  task = g['task'] if 'task' in g.files else None
  emb = m.task_emb(p, task)
  z = m.encode(p, g['obs'], task)
  np.testing.assert_allclose(z, g['z'], **tol)
  np.testing.assert_allclose(m.next(p, z, g['act'], task), g['next_z'], **tol)
  np.testing.assert_allclose(m.reward_logits(p, z, g['act'], task), g['reward_logits'], **tol)
  np.testing.assert_allclose(m.q_logits(p['Qs'], z, g['act'], emb=emb), g['q_logits'], **tol)
  np.testing.assert_allclose(m.q_logits(target, z, g['act'], emb=emb), g['target_q_logits'], **tol)
  a, info = m.pi_with_noise(p, z, g['pi_eps'], task)
  np.testing.assert_allclose(a, g['pi_action'], **tol)
  np.testing.assert_allclose(info.mean, g['pi_mean'], **tol)
  np.testing.assert_allclose(info.log_std, g['pi_log_std'], **tol)
  if 'pi_entropy' in g.files:  # the squash term is ill-conditioned where |a| rounds to 1
    ok = np.max(np.abs(g['pi_action']), axis=-1) < 0.9999
    np.testing.assert_allclose(np.asarray(info.entropy)[ok], g['pi_entropy'][ok], rtol=1e-5,
                               atol=2e-5)
    np.testing.assert_allclose(info.scaled_entropy, g['pi_scaled_entropy'], rtol=1e-5, atol=2e-5)
  if 'termination' in g.files:
    np.testing.assert_allclose(m.termination(p, z), g['termination'][:, 0], **tol)


@pytest.mark.parametrize('name', ['episodic', 'mt'])
def test_planner_matches_official_episodic_and_multitask(name):
  """Official TDMPC2._plan (termination-gated values / task-conditioned, masked MPPI with the
  task's discount) replayed with its recorded draws."""
  g, sd = _load_layout(name)
  discounts = tuple(float(d) for d in np.atleast_1d(g['plan_discount'])) if name == 'mt' else ()
  cfg, p, _ = convert.convert_state_dict(sd, task_discounts=discounts)
  model = world_model.WorldModel(cfg)
  task = jnp.asarray(g['plan_task']) if name == 'mt' else None
  res, new_state = _replay_official_plan(g, model, p, task)
  np.testing.assert_allclose(new_state.prev_mean, g['plan_mean'], atol=1e-4)
  np.testing.assert_allclose(res.action, g['plan_action'], atol=1e-4)


def test_unsupported_layouts_are_refused_by_name():
  g, sd = _load_layout('v2')
  nested = {k.replace('_dynamics.0.', '_dynamics.0.0.'): v for k, v in sd.items()}
  with pytest.raises(convert.ConversionError, match="'nested-sequential'.*module definition"):
    convert.convert_state_dict(nested)
  with pytest.raises(convert.ConversionError, match="'pixel encoder'"):
    convert.convert_state_dict(dict(sd, **{'_encoder.rgb.2.weight': np.zeros((2, 2))}))
  _, sd_mt = _load_layout('v1_mt')
  with pytest.raises(convert.ConversionError, match='pass action_dims'):
    convert.convert_state_dict(sd_mt)
  with pytest.raises(convert.ConversionError, match='no Q ensemble'):
    convert.convert_state_dict({k: v for k, v in sd.items() if 'Qs' not in k})


def test_damaged_files_list_keys():
  _, sd = _load_layout('v1')
  with pytest.raises(convert.ConversionError, match='_Qs.params.1.ln.bias'):
    convert.convert_state_dict({k: v for k, v in sd.items() if k != '_Qs.params.7'})
  _, sd2 = _load_layout('v2')
  bad = dict(sd2, **{'_target_Qs.params.0.bias': sd2['_target_Qs.params.0.bias'] + 1})
  with pytest.raises(convert.ConversionError, match='_target_Qs.params.0.bias differs'):
    convert.convert_state_dict(bad)
  _, sde = _load_layout('episodic')
  with pytest.raises(convert.ConversionError, match='_termination.1.ln.weight'):
    convert.convert_state_dict({k: v for k, v in sde.items() if k != '_termination.1.ln.weight'})


def test_official_task_sets_by_hand():
  from spec_jax import tasksets
  mt30, mt80 = tasksets.tasks('mt30'), tasksets.tasks('mt80')
  assert len(mt30) == len(set(mt30)) == 30 and len(mt80) == len(set(mt80)) == 80
  assert mt80[:30] == mt30 and mt80[30] == 'mw-assembly'
  assert (tasksets.task_id('mt30', 'walker-walk'), tasksets.task_id('mt80', 'hopper-hop')) == (1, 18)
  assert [tasksets.action_dim(t) for t in ('walker-run', 'reacher-three-hard', 'reacher-easy',
                                           'fish-swim', 'hopper-hop', 'mw-reach')] == [6, 3, 2, 5, 4, 4]
  assert tasksets.action_dims('mt30')[:4] == (6, 6, 6, 6) and sum(tasksets.action_dims('mt80')) == (
      sum(tasksets.action_dims('mt30')) + 4 * 50)
  assert tasksets.episode_lengths('mt80')[29:31] == (500, 100)
  assert tasksets.in_dm_control('cup-catch') and not tasksets.in_dm_control('cup-spin')
  with pytest.raises(ValueError, match='not in mt30'):
    tasksets.task_id('mt30', 'mw-reach')
  with pytest.raises(ValueError, match='unknown task set'):
    tasksets.tasks('mt31')


def test_task_set_defaults_for_multitask_checkpoints():
  d = convert.task_set_defaults(80, 'auto', 'mw-push')
  assert d['task_set'] == 'mt80' and d['task_id'] == 63 and len(d['action_dims']) == 80
  assert convert.task_set_defaults(30, 'auto', 'humanoid-walk')['task_id'] is None
  assert convert.task_set_defaults(3) == {} and convert.task_set_defaults(0) == {}
  assert convert.task_set_defaults(30, 'none') == {}
  with pytest.raises(convert.ConversionError, match='mt80 has 80 tasks'):
    convert.task_set_defaults(30, 'mt80')
  with pytest.raises(convert.ConversionError, match="unknown task set 'mt31'"):
    convert.task_set_defaults(30, 'mt31')
