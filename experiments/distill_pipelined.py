"""Corrector distillation for the PIPELINED executor (issue 12.1; execution length 1, plan-ahead
lead 1, experiments/evaluate_pipelined_wr.py): the speculative action of every tuple is the
first action of a plan made from the one-step prediction d(z_real, executed action) of the
previous step, relabelled by the teacher's plan from the real observation (k = 0 only). The
shipped correctors were distilled on open-loop queues (k = 1..5) and correct the pipelined
executor's one-step mismatch out of their training distribution. MLP only, 12 teacher episodes
(2 held out), no DAgger (time).

The first run (keep_best off: the last epoch of 8000 steps) overfit: held-out MSE 0.213 at
step 1000, 0.324 at step 8000, against 0.307 uncorrected. This config therefore keeps the epoch
with the lowest held-out MSE (keep_best, chosen on the held-out TEACHER episodes before any
evaluation of it); the export was retrained on the first run's rollouts:

  python launch/distill.py --config experiments/distill_pipelined.py --config.keep_best=False \\
      --export agents/walker-run --workdir runs/wr_distill_pipelined
  python launch/distill.py --config experiments/distill_pipelined.py \\
      --config.dataset=runs/wr_distill_pipelined/dataset.npz \\
      --export agents/walker-run --workdir runs/wr_distill_pipelined_best
"""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'distill_suite.py').get_config()
  c.kinds = ('mlp',)
  c.pipelined = True
  c.steps = 8000
  c.keep_best = True
  return c
