"""Cartpole under a held-out shift (issue 12.3's cartpole check): every body mass x2
(dm_control model_scale; the correctors were distilled on nominal physics). Session 1 saw the
MLP at tau 0.5 drop to 316 against 395 uncorrected under this shift (MJX sweep, 2 episodes of
300 steps); this is the host-loop evaluation on 10 paired episodes (seeds 100..109): baseline,
speculation without correction, both correctors at tau 0.5, H = 3."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_cartpole.py').get_config()
  c.model_scale = dict(mass=2.0)
  return c
