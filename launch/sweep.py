"""Vectorised sweep of tau x speculation horizon x seeds x episodes on batched MJX.

  python launch/sweep.py --export runs/cartpole/distill/export --workdir runs/cartpole/sweep
Writes sweep.csv, sweep.md, sweep_pareto.png (return vs planner calls per horizon) and
sweep_fallback.png (fallback rate vs tau).
"""
import os

from absl import app
from absl import flags
from absl import logging
import jax.numpy as jnp
from ml_collections import config_flags

from spec_jax import checkpoint
from spec_jax import evaluation
from spec_jax import logs
from spec_jax import speculation as sp
from spec_jax import sweep
from spec_jax.envs import mjx

_CONFIG = config_flags.DEFINE_config_file('config', 'experiments/sweep_cartpole.py', 'Config.')
_EXPORT = flags.DEFINE_string('export', None, 'Export directory.', required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.', required=True)
COLUMNS = ('mode', 'exec_len', 'tau', 'perturbation', 'episodes', 'return_mean', 'return_std',
           'planner_calls', 'corrections', 'fallbacks', 'fallback_rate', 'seconds')


def parse_perturbation(text: str):
  if text == 'none':
    return None
  scale = {}
  for part in text.split('+'):
    name, value = part.split('=')
    scale[name] = float(value)
  return scale


def main(argv):
  del argv
  logs.setup()
  cfg = _CONFIG.value
  model, params, pcfg, cors, meta = checkpoint.load_with_correctors(_EXPORT.value)
  extra = meta['extra']
  if cfg.mode in ('mlp', 'transformer') and cfg.mode not in cors:
    raise ValueError(f'mode {cfg.mode!r} needs a corrector; export has {sorted(cors)}')
  cor, cparams = cors.get(cfg.mode, (None, None))
  taus = jnp.array([float(t) for t in cfg.taus.split(',')])
  keys = sweep.grid_keys([int(s) for s in cfg.seeds.split(',')], cfg.episodes)
  rows = []
  for pert in cfg.perturbations.split(','):
    env = mjx.MJXEnv(cfg.task or extra['task'], impl=cfg.impl,
                     action_repeat=extra['action_repeat'],
                     episode_length=cfg.episode_length or extra['episode_length'],
                     model_scale=parse_perturbation(pert))
    for h in [int(x) for x in cfg.horizons.split(',')]:
      scfg = sp.SpecConfig(mode=cfg.mode, exec_len=h, history=cor.cfg.history if cor else 4)
      setup = sweep.SweepSetup(env, model, pcfg, scfg, cor)
      stats, seconds = sweep.timed(sweep.sweep, setup, params, cparams, taus, keys)
      new = sweep.summarize(stats, taus, h, cfg.mode, pert)
      for r in new:
        r['seconds'] = round(seconds, 2)
      rows += new
      logging.info('perturbation %s, horizon %d: %d episodes in %.1f s (compile included)',
                   pert, h, int(taus.size * keys.shape[0] * keys.shape[1]), seconds)
  os.makedirs(_WORKDIR.value, exist_ok=True)
  base = os.path.join(_WORKDIR.value, 'sweep')
  evaluation.write_csv(rows, base + '.csv', COLUMNS)
  with open(base + '.md', 'w') as f:
    f.write(evaluation.markdown_table(rows, COLUMNS))
  sweep.plot_sweep(rows, base + '_pareto.png', base + '_fallback.png')
  print(evaluation.markdown_table(rows, COLUMNS))


if __name__ == '__main__':
  app.run(main)
