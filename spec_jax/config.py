"""Static configuration for the TD-MPC2 world model and the MPPI planner.

Shape-fixing values (latent size, horizon, number of samples) live in frozen, hashable
dataclasses so they can be passed to ``jax.jit`` as static arguments. Sweepable values
(MPPI temperature, speculation threshold tau) are passed to the jitted functions as arrays.
"""
import dataclasses
from typing import Any, Dict, Optional, Tuple

# Official TD-MPC2 model sizes (millions of parameters -> architecture overrides).
MODEL_SIZES: Dict[int, Dict[str, int]] = {
    1: dict(enc_dim=256, mlp_dim=384, latent_dim=128, num_enc_layers=2, num_q=2),
    5: dict(enc_dim=256, mlp_dim=512, latent_dim=512, num_enc_layers=2, num_q=5),
    19: dict(enc_dim=1024, mlp_dim=1024, latent_dim=768, num_enc_layers=3, num_q=5),
    48: dict(enc_dim=1792, mlp_dim=1792, latent_dim=768, num_enc_layers=4, num_q=5),
    317: dict(enc_dim=4096, mlp_dim=4096, latent_dim=1376, num_enc_layers=5, num_q=8),
}


MATMUL_DTYPES = ('float32', 'bfloat16')   # PlannerConfig.matmul_dtype / WorldModel.matmul_dtype


def _require(cond: bool, msg: str) -> None:
  if not cond:
    raise ValueError(msg)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Architecture of the TD-MPC2 world model (official defaults = model size 5)."""
  obs_dim: int
  action_dim: int
  latent_dim: int = 512
  enc_dim: int = 256
  mlp_dim: int = 512
  num_enc_layers: int = 2
  num_q: int = 5
  num_bins: int = 101
  vmin: float = -10.0
  vmax: float = 10.0
  simnorm_dim: int = 8
  dropout: float = 0.01
  log_std_min: float = -10.0
  log_std_max: float = 2.0
  # Multitask (official mt30/mt80): task embedding [num_tasks, task_dim] (max_norm 1) appended to
  # every network input; obs_dim / action_dim are the largest task's (observations zero-padded);
  # action_dims[t] = task t's action dimension (action mask); task_discounts[t] its discount
  # (planner; empty -> PlannerConfig.discount for every task).
  num_tasks: int = 0
  task_dim: int = 0
  action_dims: Tuple[int, ...] = ()
  task_discounts: Tuple[float, ...] = ()
  # Episodic models carry a termination head (official cfg.episodic).
  episodic: bool = False

  def __post_init__(self):
    object.__setattr__(self, 'action_dims', tuple(int(a) for a in self.action_dims))
    object.__setattr__(self, 'task_discounts', tuple(float(d) for d in self.task_discounts))
    _require((self.num_tasks > 0) == (self.task_dim > 0),
             f'num_tasks ({self.num_tasks}) and task_dim ({self.task_dim}) must both be > 0 '
             '(multitask) or both 0')
    _require(len(self.action_dims) == self.num_tasks and
             all(1 <= a <= self.action_dim for a in self.action_dims),
             f'action_dims must give 1..{self.action_dim} for each of the {self.num_tasks} tasks, '
             f'got {self.action_dims}')
    _require(len(self.task_discounts) in (0, self.num_tasks) and
             all(0 < d <= 1 for d in self.task_discounts),
             f'task_discounts must be empty or {self.num_tasks} values in (0, 1]')
    for name in ('obs_dim', 'action_dim', 'latent_dim', 'enc_dim', 'mlp_dim'):
      _require(int(getattr(self, name)) > 0, f'ModelConfig.{name} must be > 0, got {getattr(self, name)}')
    _require(self.num_enc_layers >= 1, f'num_enc_layers must be >= 1, got {self.num_enc_layers}')
    _require(self.num_q >= 2, f'num_q must be >= 2 (two members are subsampled), got {self.num_q}')
    _require(self.num_bins >= 2, f'num_bins must be >= 2 for two-hot regression, got {self.num_bins}')
    _require(self.vmax > self.vmin, f'vmax ({self.vmax}) must exceed vmin ({self.vmin})')
    _require(self.latent_dim % self.simnorm_dim == 0,
             f'latent_dim ({self.latent_dim}) must be divisible by simnorm_dim ({self.simnorm_dim})')
    _require(0.0 <= self.dropout < 1.0, f'dropout must be in [0, 1), got {self.dropout}')
    _require(self.log_std_max > self.log_std_min, 'log_std_max must exceed log_std_min')

  @property
  def multitask(self) -> bool:
    return self.num_tasks > 0

  @property
  def bin_size(self) -> float:
    return (self.vmax - self.vmin) / (self.num_bins - 1)


def model_config(model_size: int, obs_dim: int, action_dim: int, **overrides: Any) -> ModelConfig:
  """Returns the official architecture for ``model_size`` in {1, 5, 19, 48, 317}."""
  if model_size not in MODEL_SIZES:
    raise ValueError(f'Unknown model_size {model_size!r}; choose one of {sorted(MODEL_SIZES)}')
  kwargs = dict(MODEL_SIZES[model_size])
  kwargs.update(overrides)
  return ModelConfig(obs_dim=obs_dim, action_dim=action_dim, **kwargs)


def discount_for_episode(episode_length: int, denom: float = 5.0, lo: float = 0.95,
                         hi: float = 0.995) -> float:
  """TD-MPC2's episode-length discount heuristic (0.99 for 500-step DMC episodes)."""
  frac = episode_length / denom
  return float(min(max((frac - 1) / frac, lo), hi))


@dataclasses.dataclass(frozen=True)
class PlannerConfig:
  """MPPI settings. ``temperature`` here is only the default; plan() takes it traced.
  ``init_std``: the std the first MPPI iteration samples with (None: ``max_std``, as the
  official planner); a small value makes a cheap plan a local search around its warm start
  (e.g. a fallback planner refining a ready plan from the real latent).
  ``matmul_dtype``: 'float32' (the official arithmetic) or 'bfloat16': the matrix products of
  the sampled roll-outs and values round their operands to bfloat16 and accumulate in float32
  (faster where the hardware multiplies bfloat16 natively: CPUs with AVX512-BF16 or AMX,
  GPUs, TPUs; possibly slower on CPUs without it); the encoder, the
  chosen plan's latents and every elementwise operation stay float32. A deliberate deviation
  from the official planner, off by default."""
  horizon: int = 3
  iterations: int = 6
  num_samples: int = 512
  num_elites: int = 64
  num_pi_trajs: int = 24
  min_std: float = 0.05
  max_std: float = 2.0
  temperature: float = 0.5
  discount: float = 0.99
  init_std: Optional[float] = None
  matmul_dtype: str = 'float32'

  def __post_init__(self):
    _require(self.horizon >= 1, f'horizon must be >= 1, got {self.horizon}')
    _require(self.iterations >= 1, f'iterations must be >= 1, got {self.iterations}')
    _require(0 <= self.num_pi_trajs < self.num_samples,
             f'num_pi_trajs ({self.num_pi_trajs}) must be in [0, num_samples={self.num_samples})')
    _require(1 <= self.num_elites <= self.num_samples,
             f'num_elites ({self.num_elites}) must be in [1, num_samples={self.num_samples}]')
    _require(0 < self.min_std <= self.max_std, 'need 0 < min_std <= max_std')
    _require(self.init_std is None or self.min_std <= self.init_std <= self.max_std,
             f'init_std ({self.init_std}) must be None or in [min_std, max_std] = '
             f'[{self.min_std}, {self.max_std}]')
    _require(self.matmul_dtype in MATMUL_DTYPES,
             f'matmul_dtype must be one of {MATMUL_DTYPES}, got {self.matmul_dtype!r}')
    _require(self.temperature > 0, f'temperature must be > 0, got {self.temperature}')
    _require(0 < self.discount <= 1, f'discount must be in (0, 1], got {self.discount}')


def planner_config(action_dim: int, episode_length: int, **overrides: Any) -> PlannerConfig:
  """Official MPPI defaults, +2 iterations when action_dim >= 20 (8 for humanoid)."""
  kwargs = dict(iterations=6 + 2 * int(action_dim >= 20),
                discount=discount_for_episode(episode_length))
  kwargs.update(overrides)
  return PlannerConfig(**kwargs)
