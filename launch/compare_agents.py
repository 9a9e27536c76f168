"""Compare different agents (e.g. training variants) by their replan-every-step evaluations on
the same episode seeds: one arm per --inputs entry, several training seeds of an arm joined
with '+' (same order in every arm); paired statistics against the first arm.

  python launch/compare_agents.py --labels plain,spec3 \
      --inputs runs/p1_eval/evaluation.csv+runs/p2_eval/evaluation.csv,runs/s1_eval/evaluation.csv+runs/s2_eval/evaluation.csv \
      --workdir results/issue11/spec_collect_learning

(A path containing '+' cannot be given here; call spec_jax.evaluation.compare_agents.)
"""
from absl import app
from absl import flags

from spec_jax import evaluation

_INPUTS = flags.DEFINE_list('inputs', None, "One entry per arm: its evaluation.csv files "
                            "joined with '+'.", required=True)
_LABELS = flags.DEFINE_list('labels', None, 'One name per arm.', required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.', required=True)
_FAIL = flags.DEFINE_float('fail_below', None, 'Failed-episode threshold (default: half the '
                           'first arm\'s median return).')


def main(argv):
  del argv
  _, paths = evaluation.compare_agents([a.split('+') for a in _INPUTS.value], _LABELS.value,
                                       _WORKDIR.value, _FAIL.value)
  with open(paths['md']) as f:
    print(f.read())
  print(paths)


if __name__ == '__main__':
  app.run(main)
