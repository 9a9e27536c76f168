"""Orbax checkpoints (full train state, optional replay buffer) and agent exports.

* ``Checkpointer``: periodic saves of the whole training run in ``<dir>/<step>/`` (train state,
  planner state, trainer counters, optionally the replay buffer) with ``max_to_keep``; restore
  of the latest step into an abstract template.
* ``export_agent`` / ``load_agent``: a self-contained directory (world-model params + JSON
  metadata with the model and planner configs and a format version) that the planner and the
  speculative executor load without any training code.

Export versions: 1 (first release: ``extra.env_step`` held AGENT steps, float32 storage);
2 (``extra.agent_step`` and ``extra.env_step`` = agent steps x action repeat; optional
``storage_dtype`` 'float16' for small shipped agents, loaded back as float32). Version-1
exports are migrated on load.
"""
import dataclasses
import json
import os
from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from spec_jax import config as config_lib
from spec_jax import world_model as wm_lib

EXPORT_FORMAT = 'spec_jax.agent'
EXPORT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_STORAGE_DTYPES = ('float32', 'float16')
_META = 'metadata.json'


class CheckpointError(RuntimeError):
  """Missing, partial or incompatible checkpoint or export."""


def _abs(path: str) -> str:
  return os.path.abspath(os.path.expanduser(path))


class Checkpointer:
  """Saves/restores training-run pytrees under ``directory`` (one sub-directory a step)."""

  def __init__(self, directory: str, max_to_keep: int = 3):
    self.directory = _abs(directory)
    self._mngr = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

  def latest_step(self) -> Optional[int]:
    return self._mngr.latest_step()

  def save(self, step: int, items: Dict[str, Any], meta: Dict[str, Any]) -> None:
    """Saves pytrees ``items`` (name -> pytree) and JSON ``meta`` at ``step``; blocks until done."""
    args = {name: ocp.args.StandardSave(tree) for name, tree in items.items()}
    args['meta'] = ocp.args.JsonSave(dict(meta, items=sorted(items)))
    self._mngr.save(step, args=ocp.args.Composite(**args), force=True)
    self._mngr.wait_until_finished()

  def restore(self, templates: Dict[str, Any], step: Optional[int] = None):
    """Restores into ``templates`` (name -> pytree of the same structure). Returns (items, meta).

    Items absent from the checkpoint (e.g. a buffer that was not saved) come back as None.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f'no checkpoint found in {self.directory}')
    meta = self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
    saved = set(meta.get('items', []))
    for k in sorted(saved & set(templates)):
      # Checked before any read: a restore that fails half-way leaves reads in flight.
      problems = _tree_differences(templates[k], dict(_stored_metadata(self._item_path(step, k))))
      if problems:
        raise self._mismatch(step, f" ({k!r}): {'; '.join(problems[:6])}" +
                             (f' and {len(problems) - 6} more' if len(problems) > 6 else ''))
    args = {k: ocp.args.StandardRestore(jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, v))
            for k, v in templates.items() if k in saved}
    try:
      restored = self._mngr.restore(step, args=ocp.args.Composite(**args))
    except (ValueError, KeyError, TypeError) as e:
      raise self._mismatch(step, f': {e}') from e
    return {k: (_uncommitted(restored[k]) if k in saved else None) for k in templates}, meta

  def _item_path(self, step: int, name: str) -> str:
    return os.path.join(self.directory, str(step), name)

  def _mismatch(self, step: int, detail: str) -> 'CheckpointError':
    return CheckpointError(f'checkpoint at step {step} in {self.directory} does not match the '
                           f'current configuration{detail}')

  def saved_shapes(self, name: str, step: Optional[int] = None):
    """Shapes of the saved pytree ``name`` at ``step`` (latest by default), or None."""
    step = self.latest_step() if step is None else step
    if step is None or not os.path.isdir(self._item_path(step, name)):
      return None
    return jax.tree_util.tree_map(lambda x: tuple(x.shape),
                                  dict(_stored_metadata(self._item_path(step, name))))

  def close(self) -> None:
    self._mngr.close()


def _path_shapes(tree) -> Dict[str, Tuple[int, ...]]:
  """'params/encoder/dense_0/kernel' -> shape, for any pytree (attribute, key or index path)."""
  name = lambda e: str(next(getattr(e, a) for a in ('name', 'key', 'idx') if hasattr(e, a)))
  return {'/'.join(name(e) for e in path): tuple(x.shape if hasattr(x, 'shape') else np.shape(x))
          for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _tree_differences(template, stored) -> list:
  """Human-readable differences between a template pytree and a saved metadata tree."""
  want, have = _path_shapes(template), _path_shapes(stored)
  depth_first = lambda keys: sorted(keys, key=lambda k: (k.count('/'), k))  # params before opt
  out = [f'{k}: saved {have[k]}, expected {want[k]}' for k in depth_first(want)
         if k in have and have[k] != want[k]]
  out += [f'{k}: missing from the checkpoint' for k in depth_first(set(want) - set(have))]
  out += [f'{k}: in the checkpoint, not expected' for k in depth_first(set(have) - set(want))]
  return out


def _cast_float(x, dtype):
  x = jnp.asarray(x)
  return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x


def export_agent(directory: str, model_cfg: config_lib.ModelConfig, params,
                 planner_cfg: config_lib.PlannerConfig, extra: Optional[Dict[str, Any]] = None,
                 extra_params: Optional[Dict[str, Any]] = None,
                 storage_dtype: str = 'float32') -> str:
  """Writes ``directory/{params,metadata.json}``; ``extra_params`` (e.g. a corrector) are stored
  beside the world model under their own names. ``storage_dtype='float16'`` halves the size
  (parameters are cast back to float32 on load). Returns the absolute path."""
  if storage_dtype not in _STORAGE_DTYPES:
    raise ValueError(f'storage_dtype must be one of {_STORAGE_DTYPES}, got {storage_dtype!r}')
  directory = _abs(directory)
  os.makedirs(directory, exist_ok=True)
  trees = {'world_model': params}
  trees.update(extra_params or {})
  trees = jax.tree_util.tree_map(lambda x: _cast_float(x, storage_dtype), trees)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(os.path.join(directory, 'params'), trees, force=True)
  meta = dict(format=EXPORT_FORMAT, version=EXPORT_VERSION,
              model=dataclasses.asdict(model_cfg), planner=dataclasses.asdict(planner_cfg),
              trees=sorted(trees), extra=extra or {}, storage_dtype=storage_dtype)
  with open(os.path.join(directory, _META), 'w') as f:
    json.dump(meta, f, indent=2, sort_keys=True)
  return directory


def read_export_metadata(directory: str) -> Dict[str, Any]:
  directory = _abs(directory)
  meta_path = os.path.join(directory, _META)
  if not os.path.isdir(directory):
    raise CheckpointError(f'export directory {directory} does not exist')
  if not os.path.isfile(meta_path) or not os.path.isdir(os.path.join(directory, 'params')):
    raise CheckpointError(f'{directory} is not a complete spec_jax export '
                          f'(needs {_META} and params/)')
  try:
    with open(meta_path) as f:
      meta = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise CheckpointError(f'{meta_path} is damaged (not valid JSON: {e}); re-export the agent '
                          'or restore the file') from e
  if not isinstance(meta, dict) or meta.get('format') != EXPORT_FORMAT:
    raise CheckpointError(f'{directory}: unknown export format '
                          f'{meta.get("format") if isinstance(meta, dict) else meta!r}')
  if meta.get('version') not in _READABLE_VERSIONS:
    raise CheckpointError(f'{directory}: export version {meta.get("version")} is not supported '
                          f'(this spec_jax reads versions {_READABLE_VERSIONS})')
  return _migrate(meta)


def _migrate(meta: Dict[str, Any]) -> Dict[str, Any]:
  """Brings older export metadata to the current version (in memory)."""
  if meta['version'] == 1:
    extra = meta.setdefault('extra', {})
    if 'env_step' in extra and 'agent_step' not in extra:  # v1 named agent steps env_step
      extra['agent_step'] = extra['env_step']
      extra['env_step'] = extra['agent_step'] * int(extra.get('action_repeat', 1))
    meta['storage_dtype'] = 'float32'
    meta['version'] = 2
  if meta.get('storage_dtype', 'float32') not in _STORAGE_DTYPES:
    raise CheckpointError(f'unknown storage_dtype {meta.get("storage_dtype")!r} in export '
                          f'metadata (known: {_STORAGE_DTYPES})')
  return meta


def load_agent(directory: str, extra_templates: Optional[Dict[str, Any]] = None
               ) -> Tuple[wm_lib.WorldModel, Any, config_lib.PlannerConfig, Dict[str, Any]]:
  """Loads an export. Returns (WorldModel, params, PlannerConfig, metadata).

  ``extra_templates`` (name -> template pytree) restores additional trees (e.g. a corrector);
  they are returned in ``metadata['params']``.
  """
  meta = read_export_metadata(directory)
  try:
    model_cfg = config_lib.ModelConfig(**meta['model'])
    planner_cfg = config_lib.PlannerConfig(**meta['planner'])
  except (TypeError, ValueError) as e:
    raise CheckpointError(f'{directory}: incompatible configuration in metadata: {e}') from e
  model = wm_lib.WorldModel(model_cfg)
  templates = {'world_model': jax.eval_shape(model.init, jax.random.PRNGKey(0))}
  templates.update(extra_templates or {})
  missing = set(templates) - set(meta.get('trees', []))
  if missing:
    raise CheckpointError(f'{directory}: export lacks {sorted(missing)}')
  try:
    trees = _restore_on_this_host(os.path.join(_abs(directory), 'params'))
  except Exception as e:  # orbax raises several types for missing/corrupt data
    raise CheckpointError(f'{directory}: could not read parameters: {e}') from e
  for name, template in templates.items():
    if name not in trees:
      raise CheckpointError(f'{directory}: parameters lack {name!r}')
    _check_shapes(template, trees[name], f'{directory} ({name})')
  trees = {k: jax.tree_util.tree_map(lambda x: _cast_float(x, jnp.float32), trees[k])
           for k in templates}
  meta['params'] = {k: v for k, v in trees.items() if k != 'world_model'}
  return model, trees['world_model'], planner_cfg, meta


def _stored_metadata(path: str):
  """The tree of array metadata (shape, dtype, stored sharding) of a saved pytree."""
  with ocp.StandardCheckpointer() as ckptr:
    meta = ckptr.metadata(path)
  return getattr(meta, 'item_metadata', meta)


def _restore_on_this_host(path: str):
  """Restores a saved pytree onto this process's default device, whatever device wrote it (an
  export written on a GPU loads on a CPU-only machine and vice versa): the target is built
  from the stored array metadata (shapes, dtypes) with a local single-device sharding."""
  local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree_util.tree_map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=local),
                                  _stored_metadata(path))
  with ocp.StandardCheckpointer() as ckptr:
    return _uncommitted(ckptr.restore(path, target))


def _uncommitted(tree):
  """Restored arrays as uncommitted arrays on the default device, like freshly built ones.

  Orbax returns arrays committed to a device; jit keys its cache on committedness, so a resumed
  run (or a loaded export mixed with fresh state) would recompile every jitted phase (~30 s for
  the tiny config, minutes at full size) although shapes and dtypes are unchanged.
  """
  return jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x)), tree)


def _check_shapes(template, tree, where):
  want = jax.tree_util.tree_map(lambda x: tuple(x.shape), template)
  try:
    got = jax.tree_util.tree_map(lambda x: tuple(x.shape), tree)
  except AttributeError:
    got = None
  if want != got:
    raise CheckpointError(f'{where}: parameter structure or shapes differ from the metadata')


def export_with_correctors(out_dir: str, model: wm_lib.WorldModel, params,
                           planner_cfg: config_lib.PlannerConfig, correctors: Dict[str, Any],
                           extra: Optional[Dict[str, Any]] = None,
                           storage_dtype: str = 'float32',
                           acceptance: Optional[Dict[str, Any]] = None) -> str:
  """Export with learned correctors: ``correctors`` maps a name (e.g. 'mlp') to
  (Corrector, params); ``acceptance`` (optional) maps a mode to (AcceptanceHead, params,
  metrics dict). Their configs go in the metadata, their params beside the model."""
  extra = dict(extra or {})
  extra['correctors'] = {name: dict(cfg=dataclasses.asdict(c.cfg), latent_dim=c.latent_dim,
                                    action_dim=c.action_dim)
                         for name, (c, _) in correctors.items()}
  extra_params = {f'corrector_{n}': p for n, (_, p) in correctors.items()}
  if acceptance:
    extra['acceptance'] = {name: dict(head=dataclasses.asdict(h), metrics=m)
                           for name, (h, _, m) in acceptance.items()}
    extra_params.update({f'acceptance_{n}': p for n, (_, p, _) in acceptance.items()})
  return export_agent(out_dir, model.cfg, params, planner_cfg, extra=extra,
                      extra_params=extra_params, storage_dtype=storage_dtype)


def _build(directory, what, name, fn):
  try:
    return fn()
  except (TypeError, ValueError, KeyError) as e:
    raise CheckpointError(f'{directory}: bad {what} metadata for {name!r}: {e}') from e


def load_with_correctors(directory: str, with_acceptance: bool = False):
  """Loads an export and its correctors. Returns (model, params, planner_cfg, correctors, meta)
  with ``correctors`` mapping name -> (Corrector, params) (empty if the export has none);
  with_acceptance=True appends ``heads``: mode -> (AcceptanceHead, params) (possibly empty)."""
  # local imports: keep checkpoint light
  from spec_jax import acceptance as acc_lib
  from spec_jax import correctors as corr_lib
  meta = read_export_metadata(directory)
  specs = meta.get('extra', {}).get('correctors', {})
  built, templates = {}, {}
  for name, spec in specs.items():
    c = _build(directory, 'corrector', name, lambda: corr_lib.Corrector(
        corr_lib.CorrectorConfig(**spec['cfg']), spec['latent_dim'], spec['action_dim']))
    built[f'corrector_{name}'] = c
  for name, spec in meta.get('extra', {}).get('acceptance', {}).items():
    head = _build(directory, 'acceptance head', name, lambda: acc_lib.AcceptanceHead(
        **dict(spec['head'], hidden=tuple(spec['head']['hidden']))))
    built[f'acceptance_{name}'] = head
  for key, m in built.items():
    templates[key] = jax.eval_shape(m.init, jax.random.PRNGKey(0))
  model, params, planner_cfg, meta = load_agent(directory, templates)
  pick = lambda prefix: {k[len(prefix):]: (m, meta['params'][k]) for k, m in built.items()
                         if k.startswith(prefix)}
  out = (model, params, planner_cfg, pick('corrector_'), meta)
  return out + (pick('acceptance_'),) if with_acceptance else out
