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


def test_features_by_hand():
  # Z = 2, A = 1, H = 4. token [z_real | z_hat | z_real - z_hat | a_spec] = [1 2 | 3 4 | 5 6 | 7]
  # -> features [z_real - z_hat, a_spec, d, k / H] = [5, 6, 7, 0.3, 1 / 4].
  head = acc.AcceptanceHead(2, 1, horizon=4, hidden=(4,))
  tok = jnp.arange(1.0, 8.0)
  np.testing.assert_allclose(head.features(tok, 0.3, 1), [5, 6, 7, 0.3, 0.25], rtol=1e-6)
  batch = head.features(jnp.stack([tok, -tok]), jnp.array([0.3, 0.9]), jnp.array([1, 3]))
  np.testing.assert_allclose(batch, [[5, 6, 7, 0.3, 0.25], [-5, -6, -7, 0.9, 0.75]], rtol=1e-6)
  assert head.feature_dim == 5


def test_scores_by_hand():
  # A zero-weight head with output bias log 3 gives p = sigmoid(log 3) = 3 / 4 everywhere.
  # y = (1, 0, 1, 1): accuracy at p > 0.5 (all predicted reject) 3/4; Brier
  # (3 * 0.25^2 + 0.75^2) / 4 = 0.1875; AUC of all-tied scores 0.5. With bias -log 3 (p = 1/4):
  # all predicted accept, accuracy 1/4, Brier (3 * 0.75^2 + 0.25^2) / 4 = 0.4375.
  data = acc.Labelled(jnp.zeros((4, 12)), jnp.zeros(4), jnp.ones(4), jnp.array([1.0, 0, 1, 1]))
  s = acc.scores(*_head_with_bias(np.log(3.0)), data)
  assert s == pytest.approx(dict(accuracy=0.75, brier=0.1875, auc=0.5, positive_rate=0.75),
                            abs=1e-6)
  s = acc.scores(*_head_with_bias(-np.log(3.0)), data)
  assert (s['accuracy'], s['brier']) == pytest.approx((0.25, 0.4375), abs=1e-6)


def test_training_raises_p_reject_on_rejected_steps_and_keeps_the_best_validation_chunk(
    monkeypatch):
  # Every training label is reject = 1: fitting raises p_reject above the untrained ~0.5.
  data = _labelled(jax.random.PRNGKey(0), 64)._replace(reject=jnp.ones(64))
  head = acc.AcceptanceHead(3, 3, horizon=3, hidden=(8,))
  params, m = acc.train(head, data, data, jax.random.PRNGKey(1), steps=200, batch_size=32,
                        lr=0.05, chunk=100)
  assert float(jnp.mean(head.p_reject(params, data.token, data.d, data.k))) > 0.7
  assert m['best_step'] == 200          # no validation set: the last chunk is kept
  # With a validation set the chunk of lowest validation BCE is kept: scripted BCEs 0.5, 0.3,
  # 0.4 for chunks 1..3 (100 steps each) -> step 200, val_bce 0.3.
  val = data._replace(d=data.d + 0.0)
  script, real = iter([0.5, 0.3, 0.4]), acc._bce
  monkeypatch.setattr(acc, '_bce', lambda h, p, d: next(script) if d is val else real(h, p, d))
  _, m = acc.train(head, data, data, jax.random.PRNGKey(1), steps=300, batch_size=32, lr=0.05,
                   val_set=val, chunk=100)
  assert (m['best_step'], m['val_bce']) == (200, 0.3)


def _const_corrector(c):
  """A corrector whose correction is the constant delta = tanh(bias) = c (every other leaf 0)."""
  cor = correctors.Corrector(correctors.CorrectorConfig('mlp', hidden=8, history=2), 2, 2)
  return cor, toy.constant_correction_params(cor, c)


def _dataset(a_spec, a_teacher, episode, z=2):
  n, a = np.shape(a_spec)
  zeros = jnp.zeros((n, z))
  return distill.Dataset(zeros, zeros, jnp.asarray(a_spec, jnp.float32),
                         jnp.asarray(a_teacher, jnp.float32), jnp.zeros(n),
                         jnp.zeros((n, 2, 3 * z + a)), jnp.ones((n, 2), bool),
                         jnp.ones((n,), jnp.int32), jnp.asarray(episode, jnp.int32))


def test_label_error_is_of_the_executed_corrected_action():
  # delta = 0.2. Row 1: a_spec (0, 0), teacher (0.2, 0.2): corrected error 0, uncorrected
  # sqrt(0.08). Row 2: a_spec (0.5, 0.5) -> (0.7, 0.7), teacher (0.1, 0.4): sqrt(0.6^2 + 0.3^2)
  # = sqrt(0.45); uncorrected sqrt(0.4^2 + 0.1^2) = sqrt(0.17). Row 3: a_spec (0.9, -0.9) ->
  # clip(1.1, -0.7) = (1, -0.7) = the teacher: 0; uncorrected sqrt(0.1^2 + 0.2^2) = sqrt(0.05).
  cor, p = _const_corrector(0.2)
  data = _dataset([[0, 0], [0.5, 0.5], [0.9, -0.9]], [[0.2, 0.2], [0.1, 0.4], [1.0, -0.7]],
                  [0, 0, 0])
  np.testing.assert_allclose(distill.executed_action_errors(cor, p, data),
                             [0, np.sqrt(0.45), 0], atol=1e-6)
  np.testing.assert_allclose(distill.executed_action_errors(None, None, data),
                             np.sqrt([0.08, 0.17, 0.05]), atol=1e-6)


def test_train_acceptance_labels_the_held_out_set_with_the_training_eps(monkeypatch):
  # 5 episodes; uncorrected errors |a_teacher - a_spec|: 0.1, 0.2, 0.3, 0.4 in episodes 0-3,
  # 1, 2, 3, 4 in episode 4. The split is scripted: the last episode is held out (episode 4
  # for the test set, then episode 3 for validation). Default eps: the median of the training
  # episodes 0-3, (0.2 + 0.3) / 2 = 0.25 (the held-out median would be 2.5, all 20 errors'
  # 0.3); held-out labels all 1 -> positive rate 1 (with its own median: 0.5).
  err = np.concatenate([np.tile([0.1, 0.2, 0.3, 0.4], 4), [1.0, 2.0, 3.0, 4.0]])
  data = _dataset(np.zeros((20, 1)), err[:, None], np.repeat(np.arange(5), 4))

  def last_episode_out(d, holdout, key):
    out = np.asarray(d.episode) == int(np.max(np.asarray(d.episode)))
    take = lambda mask: jax.tree_util.tree_map(lambda x: x[np.flatnonzero(mask)], d)
    return take(~out), take(out)

  monkeypatch.setattr(distill, 'split', last_episode_out)
  head = acc.AcceptanceHead(2, 1, horizon=3, hidden=(4,))
  _, m = distill.train_acceptance(head, None, None, data, jax.random.PRNGKey(0), 0.2, steps=100)
  assert m['eps'] == pytest.approx(0.25) and m['positive_rate'] == 1.0
