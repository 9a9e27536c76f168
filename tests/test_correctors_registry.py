"""The corrector registry drives the kinds, the executor modes and their error messages."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from spec_jax import correctors
from spec_jax import speculation


class ConstantCorrector(nn.Module):
  """A stand-in architecture: delta = tanh(b), one learned vector."""
  cfg: correctors.CorrectorConfig
  latent_dim: int
  action_dim: int

  @nn.compact
  def __call__(self, history, valid, a_spec):
    b = self.param('b', nn.initializers.constant(0.5), (self.action_dim,))
    return jnp.tanh(b) + 0.0 * a_spec


@pytest.fixture
def registered(monkeypatch):
  monkeypatch.setattr(correctors, 'REGISTRY', dict(correctors.REGISTRY))  # undone after
  correctors.register('constant', ConstantCorrector)
  return 'constant'


def test_registered_kind_is_a_corrector_and_an_executor_mode(registered):
  assert correctors.kinds() == ('mlp', 'transformer', 'constant')
  assert speculation.modes() == ('baseline', 'spec', 'mlp', 'transformer', 'constant')
  speculation.SpecConfig(mode=registered)   # accepted
  assert correctors.needs_corrector(registered) and not correctors.needs_corrector('spec')
  cor = correctors.Corrector(correctors.CorrectorConfig(kind=registered, history=2), 3, 2)
  params = cor.init(jax.random.PRNGKey(0))
  out = cor.correct(params, jnp.zeros((2, cor.feature_dim)), jnp.ones((2,), bool),
                    jnp.array([0.9, -0.2]))
  assert jnp.allclose(out, jnp.clip(jnp.array([0.9, -0.2]) + jnp.tanh(0.5), -1, 1))


def test_unknown_kinds_and_modes_list_the_known_ones():
  with pytest.raises(ValueError, match=r"unknown corrector kind 'gru'.*'mlp', 'transformer'"):
    correctors.CorrectorConfig(kind='gru')
  with pytest.raises(ValueError, match=r"mode must be one of .*'transformer'"):
    speculation.SpecConfig(mode='gru')
  assert 'gru' not in speculation.modes()


def test_register_refuses_taken_names(registered):
  for name in ('mlp', 'spec', 'baseline', registered):
    with pytest.raises(ValueError, match='already taken'):
      correctors.register(name, ConstantCorrector)
