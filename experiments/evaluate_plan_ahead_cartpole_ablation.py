"""Issue 12.1 on cartpole, an ablation declared after the 50 / 100 ms runs
(experiments/evaluate_plan_ahead_cartpole.py): both no-wait executors returned 1.04x the
baseline. Which part gives the gain: the corrector, or plans made one step ahead? Same agent,
same seeds 400..409, NOT paced (returns do not depend on pacing), rows: the baseline,
pipelined E = 1 / lead 1 without corrector and without gate (tau = inf: plain pipelined MPC,
each step executes the plan made during the previous step from the one-step prediction), and
pipelined E = 1 / lead 1 with the MLP corrector and no gate (tau = inf: every step corrected,
never rescued). Reported whatever it gives.

  python launch/evaluate.py --config experiments/evaluate_plan_ahead_cartpole_ablation.py \\
      --export runs/cp_s4_distill/export --workdir runs/cp_plan_ahead_ablation
"""
from spec_jax import builders

INF = float('inf')


def get_config():
  c = builders.config_module(__file__, 'evaluate_plan_ahead_cartpole.py').get_config()
  c.period_ms = 0.0
  pipe = dict(exec_lens=(1,), taus=(INF,), tau_quantiles=(), plan_ahead=True, ahead_lead=1)
  c.blocks = (dict(pipe, modes=('spec',)), dict(pipe, modes=('mlp',)))
  return c
