"""Learned acceptance: labels, the rank AUC, training on a known rule, the learned gate in the
executor, and the export round trip."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import acceptance as acc
from spec_jax import checkpoint
from spec_jax import config
from spec_jax import correctors
from spec_jax import distill
from spec_jax import evaluation
from spec_jax import speculation as sp
import toy

PC = config.PlannerConfig(horizon=3, iterations=2, num_samples=32, num_elites=4, num_pi_trajs=4)


def test_labels_split_at_the_median_and_auc_by_hand():
  y, eps = acc.make_labels(np.array([0.1, 0.4, 0.2, 0.9, 0.3]))
  assert eps == pytest.approx(0.3) and y.tolist() == [0, 1, 0, 1, 0]
  y, eps = acc.make_labels(np.array([0.1, 0.4]), eps=0.05)
  assert y.tolist() == [1, 1]
  with pytest.raises(ValueError, match='finite'):
    acc.make_labels(np.array([0.1, np.nan]))
  # positives 0.8, 0.4; negatives 0.5, 0.1: pairs (0.8>0.5, 0.8>0.1, 0.4<0.5, 0.4>0.1) = 3/4.
  p = np.array([0.8, 0.5, 0.4, 0.1])
  y = np.array([True, False, True, False])
  assert acc.roc_auc(p, y) == pytest.approx(0.75)
  assert acc.roc_auc(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(0.5)


def _labelled(key, n, z=3, a=3):
  """Tokens with a known rule: reject iff the mismatch distance d > 0.5."""
  tok = jax.random.normal(key, (n, 3 * z + a))
  d = jnp.linalg.norm(tok[:, 2 * z:3 * z], axis=-1) / 2.0
  return acc.Labelled(tok, d, jnp.ones((n,)), (d > 0.5).astype(jnp.float32))


@pytest.mark.slow
def test_head_learns_a_known_rejection_rule():
  head = acc.AcceptanceHead(3, 3, horizon=3, hidden=(32,))
  params, m = acc.train(head, _labelled(jax.random.PRNGKey(0), 2000),
                        _labelled(jax.random.PRNGKey(1), 500), jax.random.PRNGKey(2), steps=800)
  assert m['auc'] > 0.95 and m['accuracy'] > 0.85, m
  untrained = acc.scores(head, head.init(jax.random.PRNGKey(3)),
                         _labelled(jax.random.PRNGKey(1), 500))
  assert untrained['auc'] < 0.9    # the rule is learned, not given by construction


def _head_with_bias(bias):
  head = acc.AcceptanceHead(3, 3, horizon=3, hidden=(4,))
  params = head.init(jax.random.PRNGKey(0))
  params = jax.tree_util.tree_map(jnp.zeros_like, params)
  params['Dense_1']['bias'] = jnp.full((1,), bias)
  return head, params


@pytest.mark.parametrize('bias,tau,replans', [(4.0, 0.5, True), (-4.0, 0.5, False),
                                              (4.0, 0.99, False)])
def test_learned_gate_replans_when_p_reject_exceeds_tau(bias, tau, replans):
  # A head with zero weights outputs sigmoid(bias) for every input: p = 0.982 or 0.018.
  head, hp = _head_with_bias(bias)
  ex = sp.Executor(toy.ToyModel(), PC, sp.SpecConfig(mode='spec', exec_len=3, gate='learned'),
                   acceptance=head)
  xp = sp.ExecParams(toy.TOY_PARAMS, None, hp)
  obs = jnp.array([0.1, 0.2, 0.3])
  _, state, _ = sp.step(ex, xp, sp.init_state(ex), obs, jax.random.PRNGKey(0), tau, True)
  # d is tiny (observed = predicted): the norm gate would never replan here.
  obs1 = obs + 0.5 * state.action_queue[0] + 1e-3
  _, state, info = sp.step(ex, xp, state, obs1, jax.random.PRNGKey(1), tau, False)
  np.testing.assert_allclose(info.score, jax.nn.sigmoid(bias), rtol=1e-5)
  assert bool(info.replanned) == replans and bool(info.fallback) == replans
  assert float(info.d) < 0.01


@pytest.mark.slow
def test_acceptance_heads_for_each_mode_and_export_round_trip(tmp_path):
  wm, params = toy.small_agent()
  ex = sp.Executor(wm, PC, sp.SpecConfig(mode='spec', exec_len=3))
  n, K = 60, 4
  keys = jax.random.split(jax.random.PRNGKey(0), 4)
  z = jax.random.normal(keys[0], (n, 32))
  zh = z + 0.3 * jax.random.normal(keys[1], (n, 32))
  a_spec = jnp.tanh(jax.random.normal(keys[2], (n, 1)))
  tok = jnp.concatenate([z, zh, z - zh, a_spec], axis=-1)
  data = distill.Dataset(z, zh, a_spec, a_spec + 0.5 * jnp.tanh(z[:, :1] - zh[:, :1]),
                         jnp.linalg.norm(z - zh, axis=-1), jnp.repeat(tok[:, None], K, 1),
                         jnp.ones((n, K), bool), jnp.ones((n,), jnp.int32),
                         jnp.arange(n, dtype=jnp.int32) // 10)
  cor = correctors.Corrector(correctors.CorrectorConfig('mlp', hidden=16), 32, 1)
  cp = cor.init(jax.random.PRNGKey(1))
  err = distill.executed_action_errors(cor, cp, data)
  np.testing.assert_allclose(err, jnp.abs(data.a_spec - data.a_teacher)[:, 0], atol=1e-6)
  head = acc.AcceptanceHead(32, 1, horizon=3, hidden=(8,))
  hp, m = distill.train_acceptance(head, cor, cp, data, jax.random.PRNGKey(2), 0.2, steps=50)
  assert set(m) >= {'auc', 'accuracy', 'brier', 'eps'}
  out = checkpoint.export_with_correctors(str(tmp_path / 'e'), wm, params, PC, {'mlp': (cor, cp)},
                                          extra={'task': 't'}, acceptance={'mlp': (head, hp, m)})
  *_, meta, heads = checkpoint.load_with_correctors(out, with_acceptance=True)
  head2, hp2 = heads['mlp']
  assert head2 == head and meta['extra']['acceptance']['mlp']['metrics']['eps'] == m['eps']
  np.testing.assert_allclose(head2.p_reject(hp2, tok, data.d, data.k),
                             head.p_reject(hp, tok, data.d, data.k), atol=1e-6)
  point = evaluation.Point('mlp', 3, 0.5, float('nan'), 'learned')
  ex2, _, hparams = evaluation.executor_for(point, wm, PC, PC, {'mlp': (cor, cp)}, heads)
  assert ex2.spec.gate == 'learned' and ex2.acceptance == head and hparams is hp2
  with pytest.raises(ValueError, match='acceptance head'):
    evaluation.executor_for(point, wm, PC, PC, {'mlp': (cor, cp)}, {})
  assert ex.spec.gate == 'norm'


def test_grid_learned_gate_taus_are_probabilities():
  pts = evaluation.grid([dict(modes=('mlp',), exec_lens=(3,), taus=(0.3,), gate='learned',
                              plan_ahead=True)], quantiles=None, baseline=False)
  assert pts == [evaluation.Point('mlp', 3, 0.3, pts[0].tau_q, 'learned', True)]
  assert np.isnan(pts[0].tau_q)
