"""The robust corrector (experiments/distill_robust.py) under the held-out shift of
experiments/evaluate_online.py (every body mass x1.5; the distillation randomised masses in
0.7..1.3 only): MLP at tau 0.5, H = 3, seeds 100..109. No baseline in this pass: it pairs with
the shifted baseline of the online-adaptation run (same shift, seeds and keys)."""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'evaluate_online.py')
  c = base.get_config()
  c.baseline = False
  c.blocks = (dict(modes=('mlp',), exec_lens=(3,), taus=(0.5,)),)
  return c
