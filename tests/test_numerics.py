"""Hand-worked values for the TD-MPC2 numerics."""
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import numerics


class NumericsTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_symlog_symexp_values(self):
    x = jnp.array([-(math.e - 1.0), 0.0, math.e - 1.0, math.e ** 2 - 1.0])
    np.testing.assert_allclose(self.variant(numerics.symlog)(x), [-1.0, 0.0, 1.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(self.variant(numerics.symexp)(jnp.array([-1.0, 0.0, 2.0])),
                               [-(math.e - 1.0), 0.0, math.e ** 2 - 1.0], rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_two_hot_hand_values(self):
    two_hot = self.variant(lambda x: numerics.two_hot(x, 101, -10.0, 10.0))
    # symlog(0) = 0 sits exactly on bin 50 (bins are 0.2 apart from -10).
    t = two_hot(jnp.array([0.0, math.exp(0.1) - 1.0, 1e9]))
    np.testing.assert_allclose(t[0, 50], 1.0, atol=1e-6)
    np.testing.assert_allclose(t[0].sum(), 1.0, atol=1e-6)
    # symlog(x) = 0.1 -> position 50.5 -> half on bin 50, half on bin 51.
    np.testing.assert_allclose(t[1, 50:52], [0.5, 0.5], atol=1e-5)
    # Values beyond vmax are clipped to the last bin.
    np.testing.assert_allclose(t[2, 100], 1.0, atol=1e-6)
    np.testing.assert_allclose(t.sum(-1), 1.0, atol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_two_hot_round_trip(self):
    x = jnp.array([-500.0, -3.3, -0.01, 0.0, 0.7, 12.0, 900.0])
    fn = self.variant(lambda v: numerics.two_hot_inv(
        jnp.log(numerics.two_hot(v, 101, -10.0, 10.0) + 1e-30), -10.0, 10.0))
    np.testing.assert_allclose(fn(x), x, rtol=2e-4, atol=1e-5)

  def test_two_hot_inv_uniform_logits_is_zero(self):
    # Bins are symmetric about 0, so uniform probabilities decode to exactly 0.
    np.testing.assert_allclose(numerics.two_hot_inv(jnp.zeros((3, 101)), -10.0, 10.0), 0.0,
                               atol=1e-6)

  def test_soft_ce_matches_manual(self):
    logits = jnp.linspace(-1.0, 1.0, 101)[None]
    target = jnp.array([math.exp(0.1) - 1.0])
    ce = numerics.soft_ce(logits, target, 101, -10.0, 10.0)
    logp = jax.nn.log_softmax(logits[0])
    np.testing.assert_allclose(ce[0], -(0.5 * logp[50] + 0.5 * logp[51]), rtol=1e-4)

  @chex.variants(with_jit=True, without_jit=True)
  def test_simnorm_groups_sum_to_one(self):
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 32)) * 5
    y = self.variant(lambda v: numerics.simnorm(v, 8))(x)
    np.testing.assert_allclose(y.reshape(4, 4, 8).sum(-1), 1.0, atol=1e-6)
    self.assertTrue(bool(jnp.all(y >= 0)))

  def test_simnorm_uniform(self):
    np.testing.assert_allclose(numerics.simnorm(jnp.zeros((16,)), 8), 1 / 8, atol=1e-7)

  def test_mish(self):
    # mish(x) = x * tanh(softplus(x)); softplus(0) = ln 2 -> mish(1) = tanh(ln(1 + e)).
    np.testing.assert_allclose(numerics.mish(jnp.array([0.0, 1.0])),
                               [0.0, math.tanh(math.log1p(math.e))], rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_mish_matches_textbook_form_and_gradient_everywhere(self):
    # The one-exp form against x * tanh(log1p(exp(x))) in float64, across the float32 range that
    # a LayerNorm output can reach (and beyond the linear switch at 20), values and derivative.
    x = np.concatenate([np.linspace(-60.0, 60.0, 2401), [-1e4, -30.0, 19.99, 20.0, 20.01, 1e4]])
    t = np.tanh(np.logaddexp(0.0, x))                       # tanh(softplus(x))
    ref = x * t
    dref = t + x * (1.0 - t * t) * 0.5 * (1.0 + np.tanh(0.5 * x))   # sigmoid(x) = softplus'
    xs = jnp.asarray(x, jnp.float32)
    np.testing.assert_allclose(self.variant(numerics.mish)(xs), ref, rtol=2e-6, atol=1e-30)
    grad = self.variant(jax.vmap(jax.grad(numerics.mish)))(xs)
    np.testing.assert_allclose(grad, dref, rtol=1e-5, atol=1e-6)

  def test_log_std_and_gaussian_logprob(self):
    np.testing.assert_allclose(numerics.log_std(jnp.array([0.0, 50.0, -50.0]), -10.0, 12.0),
                               [-4.0, 2.0, -10.0], atol=1e-6)
    lp = numerics.gaussian_logprob(jnp.array([[0.0, 1.0]]), jnp.array([[0.0, math.log(2.0)]]))
    expected = -0.5 * math.log(2 * math.pi) * 2 - 0.5 - math.log(2.0)
    np.testing.assert_allclose(lp, [[expected]], rtol=1e-6)

  def test_squash(self):
    mu, pi, log_pi = numerics.squash(jnp.array([[0.5]]), jnp.array([[0.5]]), jnp.array([[1.0]]))
    t = math.tanh(0.5)
    np.testing.assert_allclose(mu, [[t]], rtol=1e-6)
    np.testing.assert_allclose(log_pi, [[1.0 - math.log(1 - t * t + 1e-6)]], rtol=1e-6)


if __name__ == '__main__':
  pytest.main([__file__])
