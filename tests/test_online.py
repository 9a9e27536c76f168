"""Online adaptation: the FIFO label buffer, the update trigger, that updates move the corrector
towards the teacher labels, and the runner collecting labels from its own replans."""
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
