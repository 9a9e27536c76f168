"""Compare baseline / speculation / corrected speculation on an exported agent.

  python launch/evaluate.py --export runs/cartpole/distill/export --workdir runs/cartpole/eval
Writes evaluation.csv, evaluation.md and evaluation.png (return vs planner calls).
"""
from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from spec_jax import checkpoint
from spec_jax import evaluation
from spec_jax import logs
from spec_jax import speculation as sp
from spec_jax.envs import dmc

_CONFIG = config_flags.DEFINE_config_file('config', 'experiments/evaluate_cartpole.py', 'Config.')
_EXPORT = flags.DEFINE_string('export', None, 'Export directory (with correctors for mlp/'
                              'transformer modes).', required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.', required=True)


def main(argv):
  del argv
  logs.setup()
  cfg = _CONFIG.value
  model, params, pcfg, cors, meta = checkpoint.load_with_correctors(_EXPORT.value)
  extra = meta['extra']
  env = dmc.DMCEnv(extra['task'], action_repeat=extra['action_repeat'],
                   episode_length=extra['episode_length'])
  rows = []
  taus = [float(t) for t in str(cfg.tau).split(',')]
  for mode in cfg.modes.split(','):
    if mode in ('mlp', 'transformer') and mode not in cors:
      raise ValueError(f'mode {mode!r} needs a corrector; {_EXPORT.value} has {sorted(cors)} '
                       '(run launch/distill.py)')
    cor, cparams = cors.get(mode, (None, None))
    scfg = sp.SpecConfig(mode=mode, exec_len=cfg.exec_len,
                         history=cor.cfg.history if cor else 4)
    for tau in (taus[:1] if mode == 'baseline' else taus):  # baseline ignores tau
      rows.append(evaluation.evaluate_mode(model, params, pcfg, scfg, cor, cparams, env, tau,
                                           cfg.episodes, jax.random.PRNGKey(cfg.seed), cfg.seed,
                                           log_fn=logging.info))
  paths = evaluation.write_outputs(rows, _WORKDIR.value)
  print(evaluation.markdown_table(rows))
  print(paths)


if __name__ == '__main__':
  app.run(main)
