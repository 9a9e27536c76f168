"""Builds library objects from an ml_collections experiment config (no flags): the typed
run schedule (``RunConfig``, built once by ``run_config``), environments through the
``spec_jax.envs`` registry, and the agent's model / planner / training configs."""
import dataclasses
import importlib.util
import os
from typing import Any, Dict, Tuple

from spec_jax import agent
from spec_jax import config as config_lib
from spec_jax import envs
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


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """The run schedule and environment of a training run, typed and checked once
  (``run_config``). Defaults are the official TD-MPC2 settings (humanoid-walk on dm_control);
  experiments/default.py exposes them as the base ``get_config`` that experiment configs
  override. Step counts are agent steps (env steps = agent steps x action_repeat)."""
  task: str = 'humanoid-walk'
  backend: str = 'dmc'          # a registered environment backend (spec_jax.envs.names())
  impl: str = ''                # backend implementation ('' = the backend's default)
  model_scale: Tuple[Tuple[str, float], ...] = ()  # (('mass', 1.3), ...): physics scaling
  seed: int = 1
  episode_length: int = 500     # agent steps per episode
  action_repeat: int = 2
  steps: int = 1_500_000        # agent steps to collect
  seed_steps: int = 2_500       # random-action agent steps, then as many pretraining updates
  updates_per_step: float = 1.0
  update_chunk: int = 500       # updates per jitted epoch
  num_envs: int = 1             # batched (traced) backends: environments per vector step
  chunk_steps: int = 50         # batched backends: vector steps per collection chunk
  collect_exec_len: int = 1     # batched backends: planned actions run per plan while
                                # collecting (1: a fresh plan every step, as TD-MPC2; > 1:
                                # speculative collection, only the replanning envs plan)
  collect_tau: float = float('inf')  # its gate: replan when ||z_real - z_hat|| > collect_tau
                                # (inf: open loop, replan only at queue ends and episode starts)
  buffer_size: int = 1_000_000
  eval_every: int = 50_000      # 0: no evaluation during training
  eval_episodes: int = 5
  eval_backend: str = 'dmc'     # host backend evaluating a backend that has no host loop
  checkpoint_every: int = 25_000
  save_buffer: bool = True
  keep: int = 2                 # checkpoints kept
  wall_minutes: float = 0.0     # > 0: stop after this many minutes with a checkpoint + export
  export_dtype: str = 'float32'  # or 'float16'

  @property
  def batched(self) -> bool:
    """True: the trainer runs ``num_envs`` environments of a traced backend in one jit;
    False: one environment in a host loop (a backend with both capabilities runs batched
    only with num_envs > 1)."""
    caps = envs.backend(self.backend).capabilities
    return envs.TRACED in caps and (envs.HOST not in caps or self.num_envs > 1)


def run_defaults() -> Dict[str, Any]:
  """RunConfig's defaults as a plain dict (model_scale as {}), for a base ConfigDict."""
  return dict(dataclasses.asdict(RunConfig()), model_scale={})


def run_config(cfg) -> RunConfig:
  """The typed run schedule of an experiment config (a ConfigDict or a RunConfig).

  Args:
    cfg: experiment config; needs task, backend, seed, model_size, episode_length and
      action_repeat; other RunConfig fields default.
  Returns:
    RunConfig. Raises ValueError naming a missing key, an unknown backend (listing the
    known ones), a negative wall_minutes or an unknown export_dtype.
  """
  if isinstance(cfg, RunConfig):
    return _checked(cfg)   # a hand-built RunConfig gets the same checks
  missing = [k for k in _REQUIRED if k not in cfg]
  if missing:
    raise ValueError(f'experiment config lacks {missing}')
  fields = {f.name for f in dataclasses.fields(RunConfig)}
  kw = {k: cfg[k] for k in fields if k in cfg}
  kw['model_scale'] = tuple(sorted((k, float(v)) for k, v in _dict(cfg.get('model_scale')).items()))
  return _checked(RunConfig(**kw))


def _checked(rc: RunConfig) -> RunConfig:
  """``rc`` after the checks ``run_config`` documents (ValueError otherwise)."""
  caps = envs.backend(rc.backend).capabilities   # unknown backends list the known ones
  if rc.eval_every > 0 and envs.HOST not in caps:
    envs.backend(rc.eval_backend, envs.HOST)   # evaluation needs a host loop
  if float(rc.wall_minutes or 0) < 0:
    raise ValueError(f'wall_minutes must be >= 0 (0: no limit), got {rc.wall_minutes}')
  if rc.export_dtype not in ('float32', 'float16'):
    raise ValueError(f"export_dtype must be 'float32' or 'float16', got {rc.export_dtype!r}")
  _check_collection(rc)
  return rc


def _check_collection(rc: RunConfig) -> None:
  """Speculative collection: an integer execution length >= 1, a gate tau >= 0 (not NaN),
  and a batched traced backend when the execution length is > 1."""
  E = rc.collect_exec_len
  if isinstance(E, bool) or not isinstance(E, int) or E < 1:
    raise ValueError(f'collect_exec_len must be an integer >= 1, got {E!r}')
  if not float(rc.collect_tau) >= 0:
    raise ValueError(f'collect_tau must be >= 0 (inf: no gate), got {rc.collect_tau}')
  if E == 1 and rc.collect_tau != float('inf'):
    raise ValueError(f'collect_tau ({rc.collect_tau}) has no effect with collect_exec_len 1 '
                     '(a fresh plan every step): set collect_exec_len > 1 or leave it at inf')
  if E > 1 and not rc.batched:
    raise ValueError(f'collect_exec_len {E} > 1 needs a batched traced backend (num_envs > 1 on '
                     f'a backend such as mjx); {rc.backend!r} with num_envs {rc.num_envs} runs '
                     'the host loop, which plans every step')


def check_config(cfg) -> None:
  """Raises ValueError if ``cfg`` is not a valid training config (see ``run_config``)."""
  run_config(cfg)


def make_env(cfg, seed: int = 0, backend: str = ''):
  """The environment of ``cfg`` (ConfigDict or RunConfig) on ``backend`` (default: the
  config's), through the ``spec_jax.envs`` registry, with the config's impl and model_scale."""
  rc = run_config(cfg)
  name = backend or rc.backend
  return envs.make(name, rc.task, seed=seed, action_repeat=rc.action_repeat,
                   episode_length=rc.episode_length, model_scale=dict(rc.model_scale),
                   impl=rc.impl if name == rc.backend else '')


def make_eval_env(cfg):
  """The host environment that evaluates a training run: the training backend's own when it
  has a host loop, else ``eval_backend``'s. Returns (env, note), note saying which was used."""
  rc = run_config(cfg)
  seed = rc.seed + 10_000
  if envs.HOST in envs.backend(rc.backend).capabilities:
    return make_env(rc, seed), f'evaluating on the training backend {rc.backend!r}'
  envs.backend(rc.eval_backend, envs.HOST)
  note = (f'backend {rc.backend!r} has no host loop: evaluating on {rc.eval_backend!r} '
          f'(config eval_backend)')
  return make_env(rc, seed, backend=rc.eval_backend), note


def make_agent_configs(cfg, obs_dim: int, action_dim: int):
  """(WorldModel, PlannerConfig, TrainConfig) from the config's model/planner/train blocks."""
  model_cfg = config_lib.model_config(cfg.model_size, obs_dim, action_dim,
                                      **_dict(cfg.get('model')))
  planner_cfg = config_lib.planner_config(action_dim, cfg.episode_length,
                                          **_dict(cfg.get('planner')))
  train_kw = dict(horizon=planner_cfg.horizon, discount=planner_cfg.discount)
  train_kw.update(_dict(cfg.get('train')))
  return wm_lib.WorldModel(model_cfg), planner_cfg, agent.TrainConfig.from_dict(train_kw)
