"""The pipelined executor (E = 1, lead 1, deferred rejections; experiments/evaluate_pipelined_wr.py)
with a corrector distilled FOR it (experiments/distill_pipelined.py: k = 0 tuples from one-step
predictions, the epoch with the lowest held-out error) against the shipped corrector (distilled on open-loop queues), walker-run (issue
12.1). Declared before any result of the new corrector (committed before the runs):

  pass 1, FRESH seeds 210..219, shipped export: the baseline and E = 1 + defer, shipped MLP;
  pass 2, seeds 210..219, the new export (--config.baseline=False): E = 1 + defer, new MLP;
  pass 3, seeds 200..209, the new export (--config.baseline=False): pairs with
          runs/wr_pipelined (results/issue12/pipelined_walker_run/).

Added after pass 2 (its corrector collapsed in closed loop), before running it:
  pass 4, seeds 210..219, the DAgger export (experiments/distill_pipelined_dagger.py,
          --config.baseline=False --export runs/wr_distill_pipelined_dagger/export).

The gate threshold is the shipped export's median mismatch, 0.6348, given as a number: the new
export's mismatch quantiles are those of the one-step mismatch. With E = 1 and deferred
rejections the gate changes no action (a rejected plan is continued, corrected, and its rescue
plan equals the next late plan), only the acceptance statistic. Reported whatever it gives.

  python launch/evaluate.py --config experiments/evaluate_pipelined_wr_corrector.py --export agents/walker-run --workdir runs/wr_pipe_cor1
  python launch/evaluate.py --config experiments/evaluate_pipelined_wr_corrector.py --config.baseline=False --export runs/wr_distill_pipelined_best/export --workdir runs/wr_pipe_cor2
  python launch/evaluate.py --config experiments/evaluate_pipelined_wr_corrector.py --config.baseline=False --config.seed=200 --export runs/wr_distill_pipelined_best/export --workdir runs/wr_pipe_cor3
  python launch/evaluate.py --config experiments/evaluate_pipelined_wr_corrector.py --config.baseline=False --export runs/wr_distill_pipelined_dagger/export --workdir runs/wr_pipe_cor4
"""
from spec_jax import builders

SHIPPED_MEDIAN_TAU = 0.6347693204879761   # agents/walker-run: mismatch_quantiles[50]


def get_config():
  c = builders.config_module(__file__, 'evaluate_pipelined_wr.py').get_config()
  c.seed = 210
  c.baseline = True
  c.blocks = (dict(modes=('mlp',), exec_lens=(1,), taus=(SHIPPED_MEDIAN_TAU,), tau_quantiles=(),
                   plan_ahead=True, ahead_lead=1, on_reject='defer'),)
  return c
