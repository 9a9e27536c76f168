"""dm_control distribution shift (model_scale), used for held-out shifts in evaluation."""
import numpy as np
import pytest

from spec_jax.envs import dmc


def test_dmc_model_scale_scales_mass_and_friction_and_changes_the_rollout():
  nominal = dmc.DMCEnv('cartpole-swingup', episode_length=10)
  heavy = dmc.DMCEnv('cartpole-swingup', episode_length=10, model_scale={'mass': 2.0,
                                                                         'friction': 0.5})
  m0, m1 = nominal.physics.model, heavy.physics.model
  np.testing.assert_allclose(m1.body_mass, 2.0 * m0.body_mass)
  np.testing.assert_allclose(m1.body_inertia, 2.0 * m0.body_inertia)
  np.testing.assert_allclose(m1.geom_friction, 0.5 * m0.geom_friction)
  a, b = nominal.reset(seed=0), heavy.reset(seed=0)
  np.testing.assert_allclose(a, b)
  for _ in range(5):
    a, b = nominal.step(np.ones(1))[0], heavy.step(np.ones(1))[0]
  assert np.abs(a - b).max() > 1e-3
  np.testing.assert_allclose(heavy.physics.model.body_mass, 2.0 * m0.body_mass)  # after reset


@pytest.mark.parametrize('scale', [{'gravity': 2.0}, {'mass': 0.0}, {'mass': float('nan')}])
def test_dmc_model_scale_rejects_bad_values(scale):
  with pytest.raises(ValueError, match='model_scale'):
    dmc.DMCEnv('cartpole-swingup', model_scale=scale)
