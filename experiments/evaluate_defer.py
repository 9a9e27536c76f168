"""Plan-ahead with deferred rejections (issue 12.1): a step whose ready plan (or queued action)
the gate rejects executes its corrected action at once and the host plans ahead from the
one-step prediction of the REAL latent with a cheap planner (ready within the 50 ms control
period); the next step adopts that rescue plan if the gate accepts it, otherwise defers again.
Only an episode's first step waits for a plan. In ONE run with the baseline (its full plan
call is the latency reference), on seeds 100..109 as experiments/evaluate_anytime.py, so the
rows pair with the plan-ahead, anytime and paper rows there (launch/combine_evaluations.py)."""
from spec_jax import builders

CHEAP128 = dict(iterations=1, num_samples=128, num_elites=16)
CHEAP64 = dict(iterations=1, num_samples=64, num_elites=8, num_pi_trajs=8)


def get_config():
  c = builders.config_module(__file__, 'evaluate_plan_ahead.py').get_config()
  q = dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.9,), plan_ahead=True,
           on_reject='defer')
  c.blocks = (dict(q, fallback_planner=CHEAP128),
              dict(q, fallback_planner=CHEAP64))
  return c
