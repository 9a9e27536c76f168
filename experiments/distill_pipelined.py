"""Corrector distillation for the PIPELINED executor (issue 12.1; execution length 1, plan-ahead
lead 1, experiments/evaluate_pipelined_wr.py): the speculative action of every tuple is the
first action of a plan made from the one-step prediction d(z_real, executed action) of the
previous step, relabelled by the teacher's plan from the real observation (k = 0 only). The
shipped correctors were distilled on open-loop queues (k = 1..5) and correct the pipelined
executor's one-step mismatch out of their training distribution. MLP only, 12 teacher episodes
(2 held out), no DAgger (time).

  python launch/distill.py --config experiments/distill_pipelined.py \\
      --export agents/walker-run --workdir runs/wr_distill_pipelined
"""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'distill_suite.py').get_config()
  c.kinds = ('mlp',)
  c.pipelined = True
  c.steps = 8000
  return c
