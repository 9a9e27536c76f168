"""spec_jax: speculative model-based control with TD-MPC2 in JAX/Flax."""
__version__ = '0.1.0'
