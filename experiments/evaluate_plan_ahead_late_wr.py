"""Late plan-ahead (issue 12.1) on walker-run, the task where the paper's executor keeps >= 95%
of the baseline (MLP corrector at the median-mismatch tau, H = 3: 0.97 / 0.97 / 0.95 on seeds
120..129 / 130..139 / 140..149). FRESH seeds 150..159 (chosen before any result on them), in
ONE run: the horizon-6 baseline, the paper's executor, late plan-ahead with lead 1 and 2 with
the paper's rejection (wait for a fresh plan) and with deferred rejections (cheap 1 x 64 rescue
plans). Not paced: returns and acceptance do not depend on timing; latencies come from
experiments/evaluate_plan_ahead_late_wr_latency.py on a quiet machine."""
from spec_jax import builders

CHEAP64 = dict(iterations=1, num_samples=64, num_elites=8, num_pi_trajs=8)


def get_config():
  c = builders.config_module(__file__, 'evaluate_suite_h6.py').get_config()
  c.seed = 150
  c.period_ms = 0.0
  q = dict(modes=('mlp',), exec_lens=(3,), taus=(), tau_quantiles=(0.5,))
  ahead = dict(q, plan_ahead=True)
  c.blocks = (q,
              dict(ahead, ahead_lead=1),
              dict(ahead, ahead_lead=2),
              dict(ahead, ahead_lead=2, on_reject='defer', fallback_planner=CHEAP64),
              dict(ahead, ahead_lead=1, on_reject='defer', fallback_planner=CHEAP64))
  return c
