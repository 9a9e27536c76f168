"""Official TD-MPC2 (PyTorch) checkpoints -> spec_jax parameters.

The official file is ``torch.save({"model": state_dict})`` of the WorldModel. Layout read here:
``_encoder.state.{i}``, ``_dynamics.{i}``, ``_reward.{i}``, ``_pi.{i}`` (NormedLinear layers:
weight [out, in], bias, ln.weight, ln.bias; the reward/pi output layers are plain Linear) and the
Q ensemble stored stacked through tensordict: ``_Qs.params.{layer}.{weight|bias|ln.weight|ln.bias}``
with a leading member axis (``_detach_Qs_params`` is the same data; ``_target_Qs_params`` the
target copy). Checkpoints from the older API (``_Qs.params.{n}`` flat numbering) are renamed
first. Single-task, non-episodic models only; the architecture is inferred from the shapes.
torch is needed only by ``load_torch_state_dict``.
"""
import re
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from spec_jax import config as config_lib

_LAYER_FIELDS = ('weight', 'bias', 'ln.weight', 'ln.bias')
_IGNORED = re.compile(r'^(_detach_Qs_params\..*|.*__batch_size|.*__device|log_std_min|log_std_dif)$')


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


def infer_config(sd: Dict[str, np.ndarray], simnorm_dim: int = 8) -> config_lib.ModelConfig:
  """ModelConfig from tensor shapes (obs/action dims, widths, layers, ensemble size, bins)."""
  need = ['_encoder.state.0.weight', '_dynamics.0.weight', '_dynamics.2.weight',
          '_reward.2.weight', '_Qs.params.0.weight', '_pi.0.weight']
  missing = [k for k in need if k not in sd]
  if missing:
    raise ConversionError(f'not a single-task state-observation TD-MPC2 WorldModel; missing keys: '
                          f'{missing}')
  latent = sd['_dynamics.2.weight'].shape[0]
  kw = dict(obs_dim=sd['_encoder.state.0.weight'].shape[1],
            action_dim=sd['_dynamics.0.weight'].shape[1] - latent, latent_dim=latent,
            enc_dim=sd['_encoder.state.0.weight'].shape[0], mlp_dim=sd['_dynamics.0.weight'].shape[0],
            num_enc_layers=len(_layer_indices(sd, '_encoder.state')),
            num_q=sd['_Qs.params.0.weight'].shape[0], num_bins=sd['_reward.2.weight'].shape[0],
            simnorm_dim=simnorm_dim)
  if 'log_std_min' in sd and 'log_std_dif' in sd:
    kw['log_std_min'] = float(sd['log_std_min'])
    kw['log_std_max'] = float(sd['log_std_min'] + sd['log_std_dif'])
  return config_lib.ModelConfig(**kw)


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


def convert_state_dict(state_dict: Mapping[str, Any], simnorm_dim: int = 8
                       ) -> Tuple[config_lib.ModelConfig, Dict[str, Any], Dict[str, Any]]:
  """Official state dict -> (ModelConfig, params, target_qs). Raises ConversionError listing
  unknown or missing keys."""
  sd = _upgrade_old_api({k: np.asarray(v) for k, v in state_dict.items()})
  unsupported = [k for k in sd if k.startswith(('_task_emb', '_action_masks', '_termination'))]
  if unsupported:
    raise ConversionError(f'multitask / episodic checkpoints are not supported (keys '
                          f'{sorted(unsupported)[:6]})')
  cfg = infer_config(sd, simnorm_dim)
  used = set()
  n_enc = cfg.num_enc_layers - 1 if cfg.num_enc_layers > 1 else 1
  params = dict(encoder=_mlp(sd, '_encoder.state', max(n_enc, 1), True, used),
                dynamics=_mlp(sd, '_dynamics', 2, True, used),
                reward=_mlp(sd, '_reward', 2, False, used),
                pi=_mlp(sd, '_pi', 2, False, used),
                Qs=_mlp(sd, '_Qs.params', 2, False, used))
  has_target = any(k.startswith('_target_Qs_params.') for k in sd)
  target = _mlp(sd, '_target_Qs_params', 2, False, used) if has_target else params['Qs']
  unknown = sorted(k for k in sd if k not in used and not _IGNORED.match(k))
  if unknown:
    raise ConversionError(f'unknown keys in the state dict: {unknown}')
  for k in sd:
    if k.startswith('_detach_Qs_params.'):
      twin = '_Qs.params.' + k[len('_detach_Qs_params.'):]
      if twin in sd and not np.array_equal(sd[twin], sd[k]):
        raise ConversionError(f'{k} differs from {twin} (corrupt checkpoint?)')
  return cfg, params, target
