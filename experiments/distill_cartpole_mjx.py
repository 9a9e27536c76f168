"""MLP corrector for a trained MJX cartpole-swingup agent (issue 12.1 on a second task,
experiments/evaluate_plan_ahead_cartpole.py): the CPU cartpole distillation
(experiments/distill_cartpole.py: 16 teacher episodes from seeds 1..16, 4000 optimiser steps)
with the MLP only; the export records its backend (mjx), so the teacher runs on the MJX
simulator through the host adapter.

  python launch/distill.py --config experiments/distill_cartpole_mjx.py \\
      --export runs/cp_mjx_spec3_s4/export --workdir runs/cp_s4_distill
"""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'distill_cartpole.py').get_config()
  c.kinds = ('mlp',)
  return c
