"""Distil correctors from the replanning teacher and export them with the world model.

  python launch/distill.py --export runs/cartpole/export --workdir runs/cartpole/distill
"""
import json
import os

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from spec_jax import checkpoint
from spec_jax import correctors
from spec_jax import distill
from spec_jax import logs
from spec_jax.envs import dmc

_CONFIG = config_flags.DEFINE_config_file('config', 'experiments/distill_cartpole.py', 'Config.')
_EXPORT = flags.DEFINE_string('export', None, 'Agent export directory (launch/train.py output).',
                              required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.', required=True)


def main(argv):
  del argv
  logs.setup()
  cfg = _CONFIG.value
  model, params, pcfg, meta = checkpoint.load_agent(_EXPORT.value)
  extra = meta['extra']
  env = dmc.DMCEnv(extra['task'], seed=cfg.seed, action_repeat=extra['action_repeat'],
                   episode_length=extra['episode_length'])
  key = jax.random.PRNGKey(cfg.seed)
  data, stats = distill.collect(model, params, pcfg, env, cfg.episodes, key, cfg.history,
                                cfg.teacher_prob, log_fn=logging.info)
  trained, report = {}, dict(collect=stats)
  for kind in cfg.kinds.split(','):
    cor = correctors.Corrector(correctors.CorrectorConfig(kind=kind, hidden=cfg.hidden,
                                                          history=cfg.history),
                               model.cfg.latent_dim, model.cfg.action_dim)
    cparams, metrics = distill.train(cor, data, jax.random.fold_in(key, 1), cfg.steps,
                                     cfg.batch_size, cfg.lr, cfg.lam, cfg.holdout,
                                     log_fn=logging.info)
    trained[kind], report[kind] = (cor, cparams), metrics
  os.makedirs(_WORKDIR.value, exist_ok=True)
  out = checkpoint.export_with_correctors(os.path.join(_WORKDIR.value, 'export'), model, params,
                                          pcfg, trained, extra=extra)
  with open(os.path.join(_WORKDIR.value, 'distill_metrics.json'), 'w') as f:
    json.dump(report, f, indent=2)
  logging.info('exported world model + correctors to %s', out)
  for kind in trained:
    print(f"{kind}: held-out mse {report[kind]['mse_corrected']:.5f} "
          f"(uncorrected {report[kind]['mse_uncorrected']:.5f})")


if __name__ == '__main__':
  app.run(main)
