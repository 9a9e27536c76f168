"""tau x horizon x seeds x episodes sweep on batched MJX (Playground CartpoleSwingup) with the
CPU cartpole agent. For humanoid on GPU: --config.task humanoid-walk and a humanoid export."""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = ''               # empty: the export's task
  c.backend = 'mjx'         # a traced backend (mjx, brax); empty: the export's own backend.
                            # dm_control-trained agents are swept on the Playground port
  c.impl = 'jax'
  c.mode = 'mlp'            # spec | mlp | transformer (needs the corrector in the export)
  c.taus = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
  c.tau_quantiles = ()      # taus as quantiles of the export's stored mismatch distribution
  c.horizons = (2, 3)       # execution lengths (<= planner horizon); one compile each
  c.seeds = (0, 1)
  c.episodes = 2            # per seed
  c.episode_length = 0      # 0: the export's episode length
  c.task_id = -1            # multitask exports: the task's index (-1: the export's)
  c.perturbations = ('none',)  # e.g. ('none', 'friction=0.7', 'mass=1.3', 'friction=0.7+mass=1.3')
  # 'compact' (replanning envs planned as one vmapped sub-batch: GPU/TPU), 'sequential' (one
  # at a time, exactly the needed plans: CPU hosts, BUILD_NOTES session 10) or 'auto' (the
  # backend decides: sequential on CPU, compact otherwise).
  c.replanning = 'auto'
  # Multi-host (jax.distributed): coordinator 'host:port', number of processes, this one's id.
  c.coordinator = ''
  c.num_processes = 1
  c.process_id = 0
  return c
