"""Official TD-MPC2 (PyTorch) checkpoints -> spec_jax parameters.

The official file is ``torch.save({"model": state_dict})`` of the WorldModel. Every layout the
public code (nicklashansen/tdmpc2) has saved is recognised by ``detect_layout``:

* ``first-release`` (b67b21c, 2023-10-25, until 2024-09; also the 2024-01 episodic-rl branch):
  functorch Ensemble, Q members stacked in a flat ParameterList ``_Qs.params.{n}`` /
  ``_target_Qs.params.{n}`` (4 tensors per layer: weight, bias, ln.weight, ln.bias; the last
  layer 2); no log_std buffers; multitask files hold ``_task_emb.weight`` but NOT the action
  masks (a plain attribute then), so the per-task action dimensions must be supplied.
* ``tensordict-2024`` (603b67c, 2024-09-25, until ae42389^): tensordict-stacked Q parameters
  ``_Qs.params.{layer}.{field}`` with copies ``_detach_Qs_params``, ``_target_Qs_params`` and
  ``_detach_Qs.params`` / ``_target_Qs.params``; log_std buffers; ``_action_masks`` (multitask).
* ``tensordict`` (ae42389, 2025-01-20, to the current head): as above without the
  ``_detach_Qs.params`` / ``_target_Qs.params`` duplicates.

Optional parts: ``_task_emb`` (multitask), a termination head ``_terminated`` (episodic-rl
branch 2024-01 and add30b5) or ``_termination`` (81eb170, 2025-04-08, on; present in every file
until 38b31a5, 2025-05-02, and only in episodic ones after). Pixel encoders (``_encoder.rgb``)
and layouts no public revision saves (nested ``_dynamics.0.0`` names) are refused with what is
missing. The architecture is inferred from the shapes; torch is needed only by
``load_torch_state_dict``.
"""
import dataclasses
import re
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from spec_jax import config as config_lib
from spec_jax import tasksets

_LAYER_FIELDS = ('weight', 'bias', 'ln.weight', 'ln.bias')
_IGNORED = re.compile(r'^(_detach_Qs_params\..*|_(detach|target)_Qs\.params\..*|.*__batch_size|'
                      r'.*__device|log_std_min|log_std_dif|_action_masks|_Qs\.module\..*|'
                      r'_(detach|target)_Qs\.module\..*)$')
_TERM_PREFIXES = ('_termination', '_terminated')
_HEADS = ('_encoder.state', '_dynamics', '_reward', '_pi') + _TERM_PREFIXES


class ConversionError(ValueError):
  """The state dict is not a supported official TD-MPC2 WorldModel."""


def load_torch_state_dict(path: str) -> Dict[str, np.ndarray]:
  """Reads an official checkpoint file into {key: float32 numpy array} (needs torch)."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("reading PyTorch checkpoints needs torch: pip install -e '.[torch]'") from e
  blob = torch.load(path, map_location='cpu', weights_only=False)
  sd = blob['model'] if isinstance(blob, dict) and 'model' in blob else blob
  if not isinstance(sd, Mapping):
    raise ConversionError(f'{path}: expected {{"model": state_dict}}, got {type(blob).__name__}')
  out = {}
  for k, v in sd.items():
    if isinstance(v, torch.Tensor) and v.device.type != 'meta':
      out[k] = v.detach().cpu().float().numpy()
  return out


LAYOUTS = {
    'first-release': 'functorch Ensemble, flat _Qs.params.{n} (b67b21c 2023-10-25 .. 2024-09)',
    'tensordict-2024': 'tensordict Q params + _detach_Qs.params/_target_Qs.params copies '
                       '(603b67c 2024-09-25 .. 2025-01-20)',
    'tensordict': 'tensordict Q params, _detach_Qs_params/_target_Qs_params '
                  '(ae42389 2025-01-20 .. current)',
}
_NESTED = re.compile(r'^_(encoder\.state|dynamics|reward|pi|termination|terminated)\.\d+\.\d+\.')


@dataclasses.dataclass(frozen=True)
class Layout:
  """What ``detect_layout`` found in a state dict."""
  name: str                    # a key of LAYOUTS
  num_tasks: int               # 0 for single-task
  termination: Optional[str]   # key prefix of the termination head, or None
  action_masks: bool           # '_action_masks' stored (multitask, tensordict layouts)

  @property
  def multitask(self) -> bool:
    return self.num_tasks > 0

  def describe(self) -> str:
    parts = [f'{self.name} ({LAYOUTS[self.name]})']
    if self.multitask:
      parts.append(f'multitask, {self.num_tasks} tasks')
    if self.termination:
      parts.append(f'termination head {self.termination}')
    return ', '.join(parts)


def detect_layout(sd: Mapping[str, Any]) -> Layout:
  """Names the official layout of a state dict; ConversionError for unsupported ones."""
  nested = sorted(k for k in sd if _NESTED.match(k))
  if nested:
    raise ConversionError(
        f"layout 'nested-sequential' (keys such as {nested[:3]}) is not supported: no public "
        'TD-MPC2 revision saves nested module names, so which sub-index holds the Linear, the '
        'LayerNorm and the activation is unknown; supporting it needs the code (module '
        'definition) that wrote the file. No mapping is guessed (a naive rename is reported to '
        'score 1.3 where the published agent scores 893).')
  rgb = sorted(k for k in sd if k.startswith('_encoder.rgb.'))
  if rgb:
    raise ConversionError(f"layout 'pixel encoder' (keys such as {rgb[:2]}) is not supported: "
                          'spec_jax has no convolutional (rgb) encoder; state observations only.')
  if any(re.fullmatch(r'_(target_)?Qs\.params\.\d+', k) for k in sd):
    name = 'first-release'
  elif any(k.startswith(('_detach_Qs.params.', '_target_Qs.params.')) for k in sd):
    name = 'tensordict-2024'
  elif any(re.fullmatch(r'_Qs\.params\.\d+\..+', k) for k in sd):
    name = 'tensordict'
  else:
    raise ConversionError('not an official TD-MPC2 WorldModel: missing keys: no Q ensemble '
                          f'(_Qs.params.*); first keys: {sorted(sd)[:8]}')
  term = [p for p in _TERM_PREFIXES if any(k.startswith(p + '.') for k in sd)]
  emb = sd.get('_task_emb.weight')
  if emb is not None and np.ndim(emb) != 2:
    raise ConversionError(f'_task_emb.weight must be [num_tasks, task_dim] (multitask), got shape '
                          f'{np.shape(emb)}')
  return Layout(name=name, num_tasks=0 if emb is None else int(np.shape(emb)[0]),
                termination=term[0] if term else None, action_masks='_action_masks' in sd)


def _upgrade_old_api(sd: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Old checkpoints number the stacked Q tensors flat: n -> layer n // 4, field n % 4."""
  if not any(re.fullmatch(r'_(target_)?Qs\.params\.\d+', k) for k in sd):
    return sd
  new = {}
  for k, v in sd.items():
    m = re.fullmatch(r'_(target_)?Qs\.params\.(\d+)', k)
    if m:
      n = int(m.group(2))
      prefix = '_target_Qs_params' if m.group(1) else '_Qs.params'
      new[f'{prefix}.{n // 4}.{_LAYER_FIELDS[n % 4]}'] = v
    else:
      new[k] = v
  return new


def _layer_indices(sd, prefix):
  idx = {int(m.group(1)) for k in sd for m in [re.fullmatch(re.escape(prefix) + r'\.(\d+)\..*', k)] if m}
  if not idx:
    raise ConversionError(f'missing keys: no layers under {prefix!r}')
  return sorted(idx)


def _task_action_dims(sd, layout: Layout, action_dims) -> Tuple[int, ...]:
  """Per-task action dimensions: from the stored prefix masks, else from ``action_dims``."""
  if layout.action_masks:
    masks = np.asarray(sd['_action_masks'])
    stored = tuple(int(m.sum()) for m in masks)
    prefix = np.arange(masks.shape[1])[None] < np.asarray(stored)[:, None]
    if masks.shape[0] != layout.num_tasks or not np.array_equal(masks, prefix):
      raise ConversionError(f'_action_masks {masks.shape} is not one prefix mask per task')
    if action_dims is not None and tuple(action_dims) != stored:
      raise ConversionError(f'action_dims {tuple(action_dims)} differ from the stored masks '
                            f'{stored}')
    return stored
  if action_dims is None:
    raise ConversionError(
        f'{layout.name} multitask checkpoint without _action_masks (that revision did not save '
        f'them): pass action_dims, the action dimension of each of the {layout.num_tasks} tasks '
        'in the training task order')
  return tuple(action_dims)


def infer_config(sd: Dict[str, np.ndarray], simnorm_dim: int = 8, layout: Optional[Layout] = None,
                 action_dims: Optional[Sequence[int]] = None, task_discounts: Sequence[float] = (),
                 episodic: Optional[bool] = None) -> config_lib.ModelConfig:
  """ModelConfig from tensor shapes (obs/action dims, widths, layers, ensemble size, bins)."""
  layout = layout or detect_layout(sd)
  need = ['_encoder.state.0.weight', '_dynamics.0.weight', '_dynamics.2.weight',
          '_reward.2.weight', '_Qs.params.0.weight', '_pi.0.weight']
  missing = [k for k in need if k not in sd]
  if missing:
    raise ConversionError(f'not a single-task state-observation TD-MPC2 WorldModel; missing keys: '
                          f'{missing}')
  latent = sd['_dynamics.2.weight'].shape[0]
  task_dim = int(sd['_task_emb.weight'].shape[1]) if layout.multitask else 0
  kw = dict(obs_dim=sd['_encoder.state.0.weight'].shape[1] - task_dim,
            action_dim=sd['_dynamics.0.weight'].shape[1] - latent - task_dim, latent_dim=latent,
            enc_dim=sd['_encoder.state.0.weight'].shape[0], mlp_dim=sd['_dynamics.0.weight'].shape[0],
            num_enc_layers=len(_layer_indices(sd, '_encoder.state')),
            num_q=sd['_Qs.params.0.weight'].shape[0], num_bins=sd['_reward.2.weight'].shape[0],
            simnorm_dim=simnorm_dim, num_tasks=layout.num_tasks, task_dim=task_dim,
            episodic=bool(layout.termination) if episodic is None else episodic)
  if kw['episodic'] and not layout.termination:
    raise ConversionError('episodic=True but the state dict has no termination head '
                          f'(missing keys {_TERM_PREFIXES[0]}.*)')
  if layout.multitask:
    kw['action_dims'] = _task_action_dims(sd, layout, action_dims)
    kw['task_discounts'] = tuple(task_discounts)
  if 'log_std_min' in sd and 'log_std_dif' in sd:
    kw['log_std_min'] = float(sd['log_std_min'])
    kw['log_std_max'] = float(sd['log_std_min'] + sd['log_std_dif'])
  try:
    return config_lib.ModelConfig(**kw)
  except ValueError as e:
    raise ConversionError(str(e)) from e


def model_size_name(cfg: config_lib.ModelConfig):
  """The official size (1, 5, 19, 48, 317) whose widths match, or None."""
  for size, arch in config_lib.MODEL_SIZES.items():
    if all(getattr(cfg, k) == v for k, v in arch.items()):
      return size
  return None


def _mlp(sd, prefix, n_hidden, out_ln, used):
  """Converts one official MLP into our MLP param dict, recording the keys used."""
  def get(key):
    if key not in sd:
      raise ConversionError(f'missing key {key!r}')
    used.add(key)
    return np.asarray(sd[key], np.float32)

  def swap(w):  # torch Linear [.., out, in] -> flax kernel [.., in, out]
    return np.swapaxes(w, -1, -2)

  p = {}
  for i in range(n_hidden):
    p[f'dense_{i}'] = dict(kernel=swap(get(f'{prefix}.{i}.weight')), bias=get(f'{prefix}.{i}.bias'))
    p[f'ln_{i}'] = dict(scale=get(f'{prefix}.{i}.ln.weight'), bias=get(f'{prefix}.{i}.ln.bias'))
  p['dense_out'] = dict(kernel=swap(get(f'{prefix}.{n_hidden}.weight')),
                        bias=get(f'{prefix}.{n_hidden}.bias'))
  if out_ln:
    p['ln_out'] = dict(scale=get(f'{prefix}.{n_hidden}.ln.weight'),
                       bias=get(f'{prefix}.{n_hidden}.ln.bias'))
  return p


def _check_copies(sd):
  """The stored Q copies (_detach_Qs_params, and _detach_Qs.params / _target_Qs.params in the
  2024 layout) must equal the tensors they copy."""
  twins = {'_detach_Qs_params.': '_Qs.params.', '_detach_Qs.params.': '_Qs.params.',
           '_target_Qs.params.': '_target_Qs_params.'}
  for k in sd:
    for copy, src in twins.items():
      if k.startswith(copy):
        twin = src + k[len(copy):]
        if twin not in sd:
          raise ConversionError(f'missing keys: {twin!r} (copied by {k!r})')
        if not np.array_equal(sd[twin], sd[k]):
          raise ConversionError(f'{k} differs from {twin} (corrupt checkpoint?)')


def convert_state_dict(state_dict: Mapping[str, Any], simnorm_dim: int = 8,
                       action_dims: Optional[Sequence[int]] = None,
                       task_discounts: Sequence[float] = (), episodic: Optional[bool] = None
                       ) -> Tuple[config_lib.ModelConfig, Dict[str, Any], Dict[str, Any]]:
  """Official state dict (any layout of ``detect_layout``) -> (ModelConfig, params, target_qs).

  Args: action_dims: per-task action dimensions, needed for first-release multitask files (the
  masks were not saved); task_discounts: per-task planning discounts (multitask); episodic:
  None = use a termination head when one is stored (files from add30b5..38b31a5 store one even
  when not episodic: pass False for those). Raises ConversionError listing unknown or missing
  keys, or naming an unsupported layout.
  """
  sd = {k: np.asarray(v) for k, v in state_dict.items()}
  layout = detect_layout(sd)
  sd = _upgrade_old_api(sd)
  cfg = infer_config(sd, simnorm_dim, layout, action_dims, task_discounts, episodic)
  used = set()
  n_enc = max(cfg.num_enc_layers - 1, 1)
  params = dict(encoder=_mlp(sd, '_encoder.state', n_enc, True, used),
                dynamics=_mlp(sd, '_dynamics', 2, True, used),
                reward=_mlp(sd, '_reward', 2, False, used),
                pi=_mlp(sd, '_pi', 2, False, used),
                Qs=_mlp(sd, '_Qs.params', 2, False, used))
  if layout.termination:
    term = _mlp(sd, layout.termination, 2, False, used)
    if cfg.episodic:
      params['termination'] = term
  if layout.multitask:
    params['task_emb'] = np.asarray(sd['_task_emb.weight'], np.float32)
    used.add('_task_emb.weight')
  has_target = any(k.startswith('_target_Qs_params.') for k in sd)
  target = _mlp(sd, '_target_Qs_params', 2, False, used) if has_target else params['Qs']
  unknown = sorted(k for k in sd if k not in used and not _IGNORED.match(k))
  if unknown:
    raise ConversionError(f'unknown keys in the state dict ({layout.name} layout): {unknown}')
  _check_copies(sd)
  return cfg, params, target


def task_set_defaults(num_tasks: int, task_set: str = 'auto', task: str = '') -> Dict[str, Any]:
  """Per-task settings of an official multitask checkpoint from its task set.

  Args:
    num_tasks: tasks in the checkpoint (``Layout.num_tasks``; 0 for single-task).
    task_set: 'auto' (the official set with that many tasks, if any), 'none', or a name in
      ``tasksets.TASK_SETS``.
    task: optional task to evaluate; its id in the set is returned.
  Returns:
    {} when no set applies, else dict(task_set, action_dims [T], episode_lengths [T],
    task_id (or None)). ConversionError for an unknown set or one with another task count.
  """
  if num_tasks == 0 or task_set == 'none':
    return {}
  name = tasksets.for_num_tasks(num_tasks) if task_set == 'auto' else task_set
  if name is None:
    return {}
  try:
    names = tasksets.tasks(name)
  except ValueError as e:
    raise ConversionError(f"{e}, 'auto' or 'none'") from e
  if len(names) != num_tasks:
    raise ConversionError(f'task set {name} has {len(names)} tasks, the checkpoint {num_tasks}')
  return dict(task_set=name, action_dims=tasksets.action_dims(name),
              episode_lengths=tasksets.episode_lengths(name),
              task_id=tasksets.task_id(name, task) if task in names else None)
