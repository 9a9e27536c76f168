"""The pipelined corrector (experiments/distill_pipelined.py) with two DAgger rounds of 3
teacher episodes each: roll out the pipelined executor with the CORRECTED action (still the
teacher's with probability teacher_prob), relabel with the replanning teacher, retrain. Added
after the first pipelined corrector collapsed in closed loop (seeds 210..219: BUILD_NOTES
session 11) although its held-out error beat no correction (0.213 vs 0.307): the corrected
executor visits states the teacher-driven rollouts did not.

  python launch/distill.py --config experiments/distill_pipelined_dagger.py \\
      --config.dataset=runs/wr_distill_pipelined/dataset.npz \\
      --export agents/walker-run --workdir runs/wr_distill_pipelined_dagger
"""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'distill_pipelined.py').get_config()
  c.dagger_rounds = 2
  c.dagger_episodes = 3
  return c
