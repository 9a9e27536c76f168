"""Merge evaluation passes made on the same seeds into one table and plot (or, with --pool,
pool evaluations of different seed sets).

  python launch/combine_evaluations.py --inputs runs/w/eval/evaluation.csv,runs/w/eval2/evaluation.csv \
      --reference_horizon 6 --workdir results/walker_walk
  (--labels ,robust: the second file's speculative rows become e.g. 'mlp-robust')

--pool: the inputs are evaluations of DIFFERENT seed sets, each with its own baseline; the
configurations present in every file are pooled (per-seed returns concatenated, statistics
paired seed by seed with the concatenated baseline):

  python launch/combine_evaluations.py --pool --inputs seeds150/evaluation.csv,seeds180/evaluation.csv \
      --workdir results/walker_run_pooled
"""
from absl import app
from absl import flags

from spec_jax import evaluation

_INPUTS = flags.DEFINE_list('inputs', None, 'evaluation.csv files (same seeds; with --pool, '
                            'one per seed set).', required=True)
_REF = flags.DEFINE_integer('reference_horizon', 6, 'Planner horizon of THE baseline.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.', required=True)
_TITLE = flags.DEFINE_string('title', '', 'Plot title.')
_POOL = flags.DEFINE_bool('pool', False, 'Pool different seed sets instead of merging passes '
                          'on the same seeds.')
_LABELS = flags.DEFINE_list('labels', [], 'One per input ("" for none): suffix of its '
                            'speculative modes (passes on other exports).')


def main(argv):
  del argv
  if _POOL.value:
    if _LABELS.value:
      raise app.UsageError('--labels applies to merged passes, not to --pool')
    _, paths = evaluation.pool(_INPUTS.value, _WORKDIR.value, _REF.value, _TITLE.value,
                              log_fn=print)
  else:
    _, paths = evaluation.combine(_INPUTS.value, _WORKDIR.value, _REF.value, _TITLE.value,
                                  _LABELS.value)
  print(open(paths['md']).read())


if __name__ == '__main__':
  app.run(main)
