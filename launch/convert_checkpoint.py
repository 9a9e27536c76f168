"""Convert an official TD-MPC2 checkpoint (torch.save({"model": state_dict})) to a spec_jax export.

  pip install -e '.[torch]'
  python launch/convert_checkpoint.py --checkpoint humanoid-walk-5.pt --out exports/hw5 \
      --task humanoid-walk
The model size is inferred from the tensor shapes; unknown or missing keys are listed.
"""
from absl import app
from absl import flags

from spec_jax import checkpoint
from spec_jax import config
from spec_jax import convert

_CKPT = flags.DEFINE_string('checkpoint', None, 'Official .pt file.', required=True)
_OUT = flags.DEFINE_string('out', None, 'Export directory to write.', required=True)
_TASK = flags.DEFINE_string('task', 'humanoid-walk', 'Task the agent was trained on.')
_EPISODE_LENGTH = flags.DEFINE_integer('episode_length', 500, 'Agent steps per episode.')
_ACTION_REPEAT = flags.DEFINE_integer('action_repeat', 2, 'Action repeat.')


def main(argv):
  del argv
  cfg, params, _ = convert.convert_state_dict(convert.load_torch_state_dict(_CKPT.value))
  pcfg = config.planner_config(cfg.action_dim, _EPISODE_LENGTH.value)
  out = checkpoint.export_agent(
      _OUT.value, cfg, params, pcfg,
      extra=dict(task=_TASK.value, episode_length=_EPISODE_LENGTH.value,
                 action_repeat=_ACTION_REPEAT.value, backend='dmc',
                 source=f'official TD-MPC2 checkpoint {_CKPT.value}',
                 model_size=convert.model_size_name(cfg)))
  print(f'model size {convert.model_size_name(cfg)} ({cfg}); exported to {out}')


if __name__ == '__main__':
  app.run(main)
