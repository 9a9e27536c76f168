"""Builds library objects from an ml_collections experiment config (no flags)."""
import importlib.util
import os
from typing import Any, Dict

from spec_jax import agent
from spec_jax import config as config_lib
from spec_jax import world_model as wm_lib

_REQUIRED = ('task', 'backend', 'seed', 'model_size', 'episode_length', 'action_repeat')


def load_module(path: str):
  """Loads the Python file ``path`` as a module, as ml_collections' config_flags loads
  experiment configs. Raises FileNotFoundError naming the path if it does not exist."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'config {path} not found')
  spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def config_module(here: str, name: str):
  """The experiment config module ``name`` (e.g. 'dmc_cpu.py') in the directory of the file
  ``here`` (pass ``__file__``), so a variant config can build on its base:
  ``config_module(__file__, 'dmc_cpu.py').get_config()``."""
  return load_module(os.path.join(os.path.dirname(os.path.abspath(here)), name))


def _dict(node) -> Dict[str, Any]:
  if node is None:
    return {}
  return dict(node.to_dict() if hasattr(node, 'to_dict') else node)


def check_config(cfg) -> None:
  missing = [k for k in _REQUIRED if k not in cfg]
  if missing:
    raise ValueError(f'experiment config lacks {missing}')
  if cfg.backend not in ('dmc', 'mjx'):
    raise ValueError(f"backend must be 'dmc' or 'mjx', got {cfg.backend!r}")
  if float(cfg.get('wall_minutes', 0) or 0) < 0:
    raise ValueError(f'wall_minutes must be >= 0 (0: no limit), got {cfg.wall_minutes}')
  if cfg.get('export_dtype', 'float32') not in ('float32', 'float16'):
    raise ValueError(f"export_dtype must be 'float32' or 'float16', got {cfg.export_dtype!r}")


def make_env(cfg, seed: int = 0):
  """The environment named by ``cfg.task`` / ``cfg.backend``."""
  check_config(cfg)
  if cfg.backend == 'dmc':
    from spec_jax.envs import dmc
    return dmc.DMCEnv(cfg.task, seed=seed, action_repeat=cfg.action_repeat,
                      episode_length=cfg.episode_length)
  from spec_jax.envs import mjx
  return mjx.MJXEnv(cfg.task, impl=cfg.get('impl', 'jax'), action_repeat=cfg.action_repeat,
                    episode_length=cfg.episode_length,
                    model_scale=_dict(cfg.get('model_scale')) or None)


def make_agent_configs(cfg, obs_dim: int, action_dim: int):
  """(WorldModel, PlannerConfig, TrainConfig) from the config's model/planner/train blocks."""
  model_cfg = config_lib.model_config(cfg.model_size, obs_dim, action_dim,
                                      **_dict(cfg.get('model')))
  planner_cfg = config_lib.planner_config(action_dim, cfg.episode_length,
                                          **_dict(cfg.get('planner')))
  train_kw = dict(horizon=planner_cfg.horizon, discount=planner_cfg.discount)
  train_kw.update(_dict(cfg.get('train')))
  return wm_lib.WorldModel(model_cfg), planner_cfg, agent.TrainConfig(**train_kw)
