"""Online adaptation: the FIFO label buffer, the update trigger, that updates move the corrector
towards the teacher labels, and the runner collecting labels from its own replans."""
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import config
from spec_jax import correctors
from spec_jax import evaluation
from spec_jax import online
from spec_jax import speculation as sp
import toy

COR = correctors.Corrector(correctors.CorrectorConfig('mlp', hidden=16, history=2), 4, 2)
F = COR.feature_dim


def _label(i):
  return (jnp.full((2, F), float(i)), jnp.ones((2,), bool), jnp.full((2,), 0.1 * i),
          jnp.full((2,), 0.1 * i + 0.3))


def test_buffer_is_fifo_with_hand_positions():
  cfg = online.OnlineConfig(capacity=3, update_every=100)
  st = online.init(cfg, COR, COR.init(jax.random.PRNGKey(0)))
  for i in range(5):
    st = online.push(st, *_label(i))
  assert int(st.count) == 5 and int(st.since) == 5
  # slots: 0 <- 0 then 3; 1 <- 1 then 4; 2 <- 2
  np.testing.assert_allclose(st.a_spec[:, 0], [0.3, 0.4, 0.2], atol=1e-6)
  np.testing.assert_allclose(st.history[:, 0, 0], [3.0, 4.0, 2.0])


def test_updates_fit_the_labels_and_trigger_every_n():
  cfg = online.OnlineConfig(capacity=64, update_every=4, steps=50, batch_size=16, lr=3e-3,
                            anchor=0.0, lam=0.0)
  params = COR.init(jax.random.PRNGKey(0))
  st = online.init(cfg, COR, params)
  key = jax.random.PRNGKey(1)
  rng = np.random.default_rng(0)
  for i in range(3):
    h = jnp.asarray(rng.normal(size=(2, F)), jnp.float32)
    a = jnp.asarray(rng.uniform(-0.5, 0.5, 2), jnp.float32)
    st = online.push(st, h, jnp.ones((2,), bool), a, a + 0.3)   # teacher = a_spec + 0.3
    st = online.maybe_update(cfg, COR, st, key)
  assert int(st.updates) == 0                      # 3 labels < update_every
  def err(p):
    n = int(st.count)
    a = COR.correct(p, st.history[:n], st.valid[:n], st.a_spec[:n])
    return float(jnp.mean(jnp.square(a - st.a_teacher[:n])))
  st = online.push(st, jnp.ones((2, F)), jnp.ones((2,), bool), jnp.zeros(2), jnp.full((2,), 0.3))
  before = err(st.params)
  st = online.maybe_update(cfg, COR, st, key)
  assert int(st.updates) == 1 and int(st.since) == 0
  assert err(st.params) < 0.5 * before, (before, err(st.params))
  # A huge anchor keeps the distilled parameters.
  anchored = online.OnlineConfig(capacity=64, update_every=4, steps=50, batch_size=16, lr=3e-3,
                                 anchor=1e4, lam=0.0)
  st2 = online.update(anchored, COR, st.replace(params=params, anchor=params,
                                               opt_state=online.init(anchored, COR,
                                                                     params).opt_state), key)
  assert err(st2.params) > 0.8 * before


def test_bad_online_config():
  with pytest.raises(ValueError, match='capacity'):
    online.OnlineConfig(capacity=0)
  with pytest.raises(ValueError, match='lr'):
    online.OnlineConfig(lr=0.0)


@pytest.mark.slow
def test_runner_labels_its_own_replans():
  # tau = 0: every step after t0 is a fallback at k = 1 -> 6 labels in 7 steps, whose teacher
  # action is the executed (replanned) action; update_every 2 -> 3 updates.
  wm, params = toy.small_agent()
  pc = config.PlannerConfig(horizon=3, iterations=2, num_samples=32, num_elites=4, num_pi_trajs=4)
  cor = correctors.Corrector(correctors.CorrectorConfig('mlp', hidden=16), 32, 1)
  cp = cor.init(jax.random.PRNGKey(0))
  ex = sp.Executor(wm, pc, sp.SpecConfig(mode='mlp', exec_len=3), cor)
  cfg = online.OnlineConfig(capacity=16, update_every=2, steps=2, batch_size=4)
  env = toy.FakeEnv(np.sin(np.arange(35.0)).reshape(7, 5), 1)
  out = evaluation.run_episode(ex, sp.ExecParams(params, cp), env, jax.random.PRNGKey(0), 0, 0.0,
                               evaluation.Runtime(online=cfg), online_state=online.init(cfg, cor, cp))
  st = out['online_state']
  assert int(st.count) == 6 and int(st.updates) == 3
  np.testing.assert_allclose(st.a_teacher[:6, 0], np.stack(env.actions)[1:, 0], atol=1e-6)
  moved = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda a, b: jnp.abs(a - b).max(),
                                                           st.params, cp))
  assert max(float(m) for m in moved) > 0


def _const(c):
  return toy.constant_correction_params(COR, c)


def _bias(p):
  return np.asarray(p['GatedHead_0']['delta_out']['bias'])


def test_online_loss_by_hand():
  # delta = 0.2 on both action dims. Label 1: a_spec (0, 0), teacher (0.5, 0.5): a = (0.2, 0.2),
  # fit mean(0.3^2) = 0.09, reg mean(0.2^2) = 0.04. Label 2: a_spec (0.5, -0.5), teacher
  # (0.5, 0.5): a = (0.7, -0.3), fit (0.2^2 + 0.8^2) / 2 = 0.34, reg 0.04. lam 0.5:
  # per = (0.11, 0.36). Anchor: the all-zero parameters, distance 2 * atanh(0.2)^2.
  cfg = online.OnlineConfig(lam=0.5, anchor=1.0)
  h, v = jnp.zeros((2, 2, F)), jnp.ones((2, 2), bool)
  a_spec = jnp.array([[0.0, 0.0], [0.5, -0.5]])
  a_teacher = jnp.array([[0.5, 0.5], [0.5, 0.5]])
  p, anchor = _const(0.2), _const(0.0)
  dist = 2 * np.arctanh(0.2) ** 2
  loss = lambda w, q=anchor: float(online._loss(p, q, COR, cfg, h, v, a_spec, a_teacher,
                                                jnp.asarray(w, jnp.float32)))
  assert loss([1, 1]) == pytest.approx((0.11 + 0.36) / 2 + dist, abs=1e-5)
  assert loss([1, 0]) == pytest.approx(0.11 + dist, abs=1e-5)    # weights pick the labels
  assert loss([0, 0]) == pytest.approx(dist, abs=1e-5)           # no label: no fit term
  assert loss([1, 1], p) == pytest.approx((0.11 + 0.36) / 2, abs=1e-5)   # at the anchor


def test_update_pulls_towards_the_distilled_anchor_not_the_current_parameters():
  # Current delta 0.5 already fits the label (teacher = a_spec + 0.5), the anchor is delta 0
  # (bias 0): the gradient of the anchor term 2 * 10 * b ~ 11 dominates (the fit term's is
  # < 0.05 while b moves by 0.05), always positive, so each Adam step lowers the bias by ~lr:
  # 5 steps of lr 0.01 -> b ~ atanh(0.5) - 0.05. Anchoring to the parameters the update
  # started from would leave a zero gradient and no change.
  cfg = online.OnlineConfig(capacity=4, update_every=1, steps=5, batch_size=4, lr=0.01, lam=0.0,
                            anchor=10.0)
  st = online.init(cfg, COR, _const(0.5)).replace(anchor=_const(0.0))
  st = online.push(st, jnp.zeros((2, F)), jnp.ones((2,), bool), jnp.zeros(2),
                   jnp.full((2,), 0.5))
  st = online.update(cfg, COR, st, jax.random.PRNGKey(0))
  np.testing.assert_allclose(_bias(st.params), np.arctanh(0.5) - 0.05, atol=2e-3)
  np.testing.assert_array_equal(_bias(st.anchor), 0.0)   # the anchor itself never moves


def test_update_samples_every_filled_slot_and_no_empty_one():
  # capacity 8, two labels (a_spec 0): slot 0 wants delta 0.2 (= the current delta: zero
  # gradient), slot 1 wants 0.6 (pushes the bias up). The 6 empty slots (a_spec 0, teacher 0)
  # would pull it down (mean gradient over 8 slots: (0 - 0.4 + 6 * 0.2) / 8 > 0). Sampling
  # both filled slots raises the bias by at most lr per Adam step (5 steps, lr 0.01), and by
  # more than half of that (the sign never changes, only the share of slot-1 draws); never
  # sampling the newest slot (off by one) would leave it unchanged.
  cfg = online.OnlineConfig(capacity=8, update_every=1, steps=5, batch_size=16, lr=0.01,
                            lam=0.0, anchor=0.0)
  st = online.init(cfg, COR, _const(0.2))
  for target in (0.2, 0.6):
    st = online.push(st, jnp.zeros((2, F)), jnp.ones((2,), bool), jnp.zeros(2),
                     jnp.full((2,), target))
  st = online.update(cfg, COR, st, jax.random.PRNGKey(3))
  moved = _bias(st.params) - np.arctanh(0.2)
  assert np.all(moved > 0.5 * 5 * 0.01) and np.all(moved <= 5 * 0.01 + 1e-6), moved


def test_runner_labels_only_replans_that_had_a_speculative_action_queued():
  # evaluation._label: a label needs t > 0, a replan, a finite step and 1 <= k < H (H = 3):
  # the replanned action is the teacher, info.a_spec the speculative action it replaces.
  cfg = online.OnlineConfig(capacity=4, update_every=100)
  ex = types.SimpleNamespace(planner=types.SimpleNamespace(horizon=3))
  st0 = online.init(cfg, COR, COR.init(jax.random.PRNGKey(0)))
  state = types.SimpleNamespace(history=jnp.full((2, F), 7.0), history_valid=jnp.array([False, True]))
  action = np.array([0.25, -0.5], np.float32)

  def label(t, replanned=True, nonfinite=False, k=1):
    info = types.SimpleNamespace(k=jnp.int32(k), replanned=jnp.bool_(replanned), nonfinite=jnp.bool_(nonfinite),
               a_spec=jnp.array([0.75, 0.125]))
    return evaluation._label(ex, st0, state, info, action, t)

  for kw in (dict(t=0), dict(t=1, replanned=False), dict(t=1, nonfinite=True), dict(t=1, k=0),
             dict(t=1, k=3)):
    assert int(label(**kw).count) == 0, kw
  for k in (1, 2):
    st = label(t=5, k=k)
    assert int(st.count) == 1
    np.testing.assert_array_equal(st.a_teacher[0], [0.25, -0.5])
    np.testing.assert_array_equal(st.a_spec[0], [0.75, 0.125])
    np.testing.assert_array_equal(st.history[0], np.full((2, F), 7.0))
    np.testing.assert_array_equal(st.valid[0], [False, True])
