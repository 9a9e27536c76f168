"""Pipelined plan-ahead (E = 1, lead 1; experiments/evaluate_pipelined_wr.py) with a planner
that FITS walker's real 50 ms control period on this 2-core CPU (issue 12.1), paced at 50 ms, on
a QUIET machine, the same fresh seeds 200..209.

With E = 1 a plan runs in every control period, so the speculative planner must finish within
it: every plan of the speculative rows uses 2 MPPI iterations instead of 4 (about 28-36 ms here
against 53-68 ms for the exported 256 x 4). The baseline keeps the full planner and is the
latency reference (its median plan call, same run). Rows: baseline, E = 1 / L = 1 with the MLP
corrector and deferred rejections (no step waits for a plan after the first), the same without
corrector and gate, and with the paper's rejection (a rejected step waits for a fresh plan).
Declared before any result on these seeds; reported whatever it gives (returns too: the pacing
does not change them, the weaker planner may).

  python launch/evaluate.py --config experiments/evaluate_pipelined_wr_fit.py \\
      --export agents/walker-run --workdir runs/wr_pipelined_fit
"""
from spec_jax import builders


def get_config():
  pipe = builders.config_module(__file__, 'evaluate_pipelined_wr.py')
  c = pipe.get_config()
  c.period_ms = 50.0
  c.spec_planner.iterations = 2
  paper_rejection, defer, no_gate = pipe.pipelined_blocks(0.5)
  c.blocks = (defer, no_gate, paper_rejection)
  return c
