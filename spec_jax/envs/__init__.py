"""Environments behind one protocol and one registry.

A backend is registered with a factory and its capabilities (``register``); ``make(backend,
task, ...)`` builds one. Two capabilities (a backend has one or both):

* ``HOST``: a host loop, numpy in/out: ``reset(seed=None) -> obs [O]``;
  ``step(action [A]) -> (obs [O], reward, done, info)`` (evaluation, distillation, training on
  one environment).
* ``TRACED``: pure JAX, unbatched, for vmapped rollouts under jit: ``reset_one(key [2]) ->
  state`` (with ``state.obs [O]``, ``state.done []`` > 0 once the backend ends the episode);
  ``step_one(state, action [A]) -> (state, reward [])`` with the action repeat inside. The
  instance must be hashable (it is a static jit argument). ``envs.batch`` builds batched,
  auto-resetting reset/step from these two (many-environment training); sweeps need this.

Both expose ``spec`` (an ``EnvSpec``). Registered (simulators imported only when used):

* ``dmc`` (HOST): ``dmc.DMCEnv``, native MuJoCo via dm_control (CPU); the paper's
  humanoid-walk with action repeat 2 and 500 agent steps.
* ``mjx`` (TRACED): ``mjx.MJXEnv``, MuJoCo Playground (MJX), impl 'jax' (CPU/GPU) or 'warp'.
* ``brax`` (TRACED): ``brax_env.BraxEnv``, Brax environments (ant, hopper, inverted-pendulum,
  ...), pipeline 'generalized' (default), 'positional', 'spring' or 'mjx' as ``impl``.

A new backend is one module and one ``register`` line.
"""
import importlib
import inspect
from typing import Any, Callable, Dict, NamedTuple, Optional, Protocol, Tuple

import numpy as np

HOST = 'host'      # reset(seed) / step(action): a host loop, numpy in/out
TRACED = 'traced'  # reset_one(key) / step_one(state, action): pure JAX, for vmap under jit


class EnvSpec(NamedTuple):
  task: str
  obs_dim: int
  action_dim: int
  episode_length: int   # agent steps per episode
  action_repeat: int


class HostEnv(Protocol):
  """The HOST capability (numpy in/out, one environment)."""
  spec: EnvSpec

  def reset(self, seed: Optional[int] = None) -> np.ndarray:
    """Starts an episode (``seed`` reseeds its initial state). Returns obs [O]."""

  def step(self, action: np.ndarray) -> Tuple[np.ndarray, float, bool, Dict[str, Any]]:
    """action [A] in [-1, 1] -> (obs [O], reward summed over the action repeat, done, info)."""


class TracedEnv(Protocol):
  """The TRACED capability (pure JAX, unbatched; vmapped and jitted by callers; hashable)."""
  spec: EnvSpec

  def reset_one(self, key: Any) -> Any:
    """key [2] -> state with ``.obs`` [O] and ``.done`` [] (> 0 once the episode is over)."""

  def step_one(self, state: Any, action: Any) -> Tuple[Any, Any]:
    """(state, action [A]) -> (state, reward [] summed over the action repeat)."""


def check_action(action, action_dim: int, batch_shape=()) -> np.ndarray:
  """Validates an action array: shape batch_shape + (action_dim,), finite, within [-1, 1]."""
  a = np.asarray(action)
  expected = tuple(batch_shape) + (action_dim,)
  if a.shape != expected:
    raise ValueError(f'action must have shape {expected}, got {a.shape}')
  if not np.all(np.isfinite(a)):
    raise ValueError('action contains NaN or inf')
  if np.any(np.abs(a) > 1.0 + 1e-6):
    raise ValueError(f'action outside [-1, 1]: min {a.min():.4f}, max {a.max():.4f}')
  return a


def scaled_fields(model, scale: Dict[str, float]) -> Dict[str, Any]:
  """The physics fields a ``model_scale`` changes, scaled: {'friction': f} -> geom_friction x f;
  {'mass': m} -> body_mass and body_inertia x m. ``model`` is any object with those array fields
  (mujoco.MjModel, mjx.Model, a Brax System); each backend writes the result back its own way."""
  unknown = set(scale) - {'friction', 'mass'}
  if unknown:
    raise ValueError(f'model_scale supports friction and mass, got {sorted(unknown)}')
  if any(not np.isfinite(v) or v <= 0 for v in scale.values()):
    raise ValueError(f'model_scale takes positive finite friction and mass factors, got {scale}')
  out = {}
  if 'friction' in scale:
    out['geom_friction'] = model.geom_friction * scale['friction']
  if 'mass' in scale:
    out['body_mass'] = model.body_mass * scale['mass']
    out['body_inertia'] = model.body_inertia * scale['mass']
  return out


def parse_task(task: str):
  """'humanoid-walk' -> ('humanoid', 'walk'); 'cup-catch' -> ('ball_in_cup', 'catch')."""
  if not isinstance(task, str) or '-' not in task:
    raise ValueError(f"task must look like 'domain-task' (e.g. 'humanoid-walk'), got {task!r}")
  domain, name = task.replace('-', '_').split('_', 1)
  domain = dict(cup='ball_in_cup', pointmass='point_mass').get(domain, domain)
  return domain, name


class Backend(NamedTuple):
  factory: Callable[..., Any]   # (task, **options) -> environment
  capabilities: frozenset       # subset of {HOST, TRACED}


REGISTRY: Dict[str, Backend] = {}


def register(name: str, factory: Callable[..., Any], host: bool = False,
             traced: bool = False) -> None:
  """Registers (or replaces) backend ``name``.

  Args:
    name: the backend name configs and exports record (``cfg.backend``, ``extra['backend']``).
    factory: ``factory(task, seed=, action_repeat=, episode_length=, model_scale=, impl=)``
      -> an environment with ``spec`` and the methods of the capabilities below.
    host: it has the host loop (reset/step).
    traced: it has reset_one/step_one.
  """
  if not (host or traced):
    raise ValueError(f'backend {name!r} must have the host or the traced capability (or both)')
  caps = frozenset(c for c, on in ((HOST, host), (TRACED, traced)) if on)
  REGISTRY[name] = Backend(factory, caps)


def names(need: Optional[str] = None) -> Tuple[str, ...]:
  """Registered backends (sorted), only those with capability ``need`` if given."""
  return tuple(sorted(n for n, b in REGISTRY.items() if need is None or need in b.capabilities))


def backend(name: str, need: Optional[str] = None) -> Backend:
  """The registry entry of ``name``, checked to have capability ``need`` (HOST or TRACED).
  Raises ValueError listing the known backends, or those with ``need``."""
  if need not in (None, HOST, TRACED):
    raise ValueError(f'need must be {HOST!r}, {TRACED!r} or None, got {need!r}')
  if name not in REGISTRY:
    raise ValueError(f'Unknown environment backend {name!r}; known: {list(names())}')
  entry = REGISTRY[name]
  if need is not None and need not in entry.capabilities:
    what = 'reset(seed)/step(action) host loop' if need == HOST else 'traced reset_one/step_one'
    raise ValueError(f'backend {name!r} has no {what}; backends that have: {list(names(need))}')
  return entry


def make(name: str, task: str, need: Optional[str] = None, seed: int = 0,
         action_repeat: int = 2, episode_length: int = 500,
         model_scale: Optional[Dict[str, float]] = None, impl: str = ''):
  """Builds ``task`` on backend ``name`` (checked to have capability ``need``).

  Args:
    name: a registered backend ('dmc', 'mjx', 'brax', ...).
    task: 'domain-task' (e.g. 'cartpole-swingup'); the backend maps it to its own naming.
    need: HOST or TRACED to require that capability, or None. HOST on a traced-only backend
      returns it wrapped in ``host_adapter.HostAdapter`` (evaluation on its own simulator).
    seed: host backends' initial-state randomness (traced backends take keys instead).
    action_repeat: simulator steps per agent step.
    episode_length: agent steps per episode.
    model_scale: optional ``{'mass': x, 'friction': y}`` physics scaling.
    impl: backend implementation ('' = the backend's default).
  Returns:
    The environment (``spec``: EnvSpec; the methods of its capabilities).
  """
  host_over_traced = need == HOST and TRACED in backend(name).capabilities and (
      HOST not in backend(name).capabilities)
  entry = backend(name, None if host_over_traced else need)
  env = entry.factory(task, seed=seed, action_repeat=action_repeat,
                      episode_length=episode_length, model_scale=model_scale or None, impl=impl)
  if host_over_traced:   # a traced-only backend driven from the host (envs.host_adapter)
    from spec_jax.envs import host_adapter  # pylint: disable=g-import-not-at-top
    return host_adapter.HostAdapter(env, seed)
  return env


def export_backend(extra: Dict[str, Any], override: str = '') -> str:
  """The backend to run an exported agent on: ``override`` when given (a config's
  ``backend``), else the one its metadata records (``extra['backend']``, written by the
  trainer and the converter; 'dmc' for exports that record none)."""
  return override or extra.get('backend') or 'dmc'


def lazy(module: str, cls: str) -> Callable[..., Any]:
  """A factory that imports ``spec_jax.envs.<module>`` only when called and builds ``cls``
  with the options its constructor takes. ``seed`` is dropped where not taken (traced backends
  take keys); any other option a backend does not take is a ValueError unless empty."""
  def factory(task: str, **options):
    env_cls = getattr(importlib.import_module(f'spec_jax.envs.{module}'), cls)
    takes = inspect.signature(env_cls).parameters
    extra = {k: v for k, v in options.items() if k not in takes and k != 'seed' and v}
    if extra:
      raise ValueError(f'{cls} does not take {sorted(extra)} (got {extra})')
    return env_cls(task, **{k: v for k, v in options.items() if k in takes and v is not None
                            and not (k == 'impl' and v == '')})
  return factory


register('dmc', lazy('dmc', 'DMCEnv'), host=True)
register('mjx', lazy('mjx', 'MJXEnv'), traced=True)
register('brax', lazy('brax_env', 'BraxEnv'), traced=True)
