"""Refining the ready plan from the real latent (issue 12.1): pipelined plan-ahead (E = 1,
lead 1: every step's plan is made during the previous step from the one-step prediction of the
real latent) where the step, instead of (or besides) the learned corrector, runs ONE cheap MPPI
iteration from the REAL latent, warm-started from the ready plan's mean and sampling with a
small std (``PlannerConfig.init_std``): a local search around the ready plan that sees the
real state. It is the anytime fallback planner (session 5) with a small initial std; with tau
= 0 the gate rejects every ready plan, so every step after the first refines.
init_std = 0.27 is the median final std of the first action of the exported 256 x 4 planner on
walker-run (seed 900, not an evaluation seed, 200 steps); 1 x 32 (4 elites, 4 policy
trajectories) takes 3.8 ms against 51.8 ms for the full plan (jitted plan_from_latent calls,
alternated, 2-core CPU): the refine fits the 10% latency budget, the full planner does not.

Declared before any result (this docstring is committed before the run): FRESH seeds
220..229, not paced, ONE run, most important first: the baseline; E = 1 / L = 1 no corrector,
refine every step (1 x 32, init_std 0.27); E = 1 / L = 1 MLP at tau = the median mismatch
with the refine on rejected steps (accepted steps use the corrected ready action); the
session-11 best no-wait executor (E = 1 / L = 1, MLP, defer, full planner) as reference; the
refine with the official initial std (init_std None = max_std 2.0: ablation of the small std);
the refine with 1 x 64 samples. Reported whatever it gives.

  python launch/evaluate.py --config experiments/evaluate_refine_wr.py \\
      --export agents/walker-run --workdir runs/wr_refine
"""
from spec_jax import builders

REFINE32 = dict(iterations=1, num_samples=32, num_elites=4, num_pi_trajs=4, init_std=0.27)


def refine_block(mode: str, fallback: dict, quantile=None):
  """E = 1 / L = 1 with the paper's rejection and ``fallback`` as the fallback planner; tau 0
  (every ready plan rejected: refine every step) unless a mismatch ``quantile`` is given."""
  if quantile is None:
    gate = dict(taus=(0.0,), tau_quantiles=())
  else:
    gate = dict(taus=(), tau_quantiles=(quantile,))
  return dict(modes=(mode,), exec_lens=(1,), plan_ahead=True, ahead_lead=1,
              fallback_planner=fallback, **gate)


def get_config():
  pipelined = builders.config_module(__file__, 'evaluate_pipelined_wr.py')
  c = builders.config_module(__file__, 'evaluate_plan_ahead_late_wr.py').get_config()
  c.seed = 220
  c.blocks = (refine_block('spec', REFINE32), refine_block('mlp', REFINE32, 0.5),
              pipelined.pipelined_blocks(0.5)[1],
              refine_block('spec', dict(REFINE32, init_std=None)),
              refine_block('spec', dict(REFINE32, num_samples=64, num_elites=8,
                                        num_pi_trajs=8)))
  return c
