"""Convert an official TD-MPC2 checkpoint (torch.save({"model": state_dict})) to a spec_jax export.

  pip install -e '.[torch]'
  python launch/convert_checkpoint.py --checkpoint humanoid-walk-5.pt --out exports/hw5 \
      --task humanoid-walk
The layout (first-release / tensordict-2024 / tensordict, multitask, termination head) is
detected and printed with the model size and task count; unknown or missing keys are listed and
unsupported layouts refused by name. Multitask files with 30 or 80 tasks take the official
mt30 / mt80 task order, action dimensions and episode lengths (spec_jax/tasksets.py) unless
--task_set none; other first-release multitask files need --action_dims.
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
_ACTION_DIMS = flags.DEFINE_list('action_dims', None, 'Multitask: action dim of each task, in '
                                 'training order (needed when the file has no _action_masks).')
_TASK_EPISODE_LENGTHS = flags.DEFINE_list('task_episode_lengths', None,
                                          'Multitask: episode length of each task (discounts).')
_TASK_SET = flags.DEFINE_string('task_set', 'auto', "Multitask: 'auto' (mt30/mt80 by task count), "
                                "'none', or a task set name.")
_EPISODIC = flags.DEFINE_enum('episodic', 'auto', ['auto', 'true', 'false'],
                              'Use the termination head (auto: when the file has one).')


def main(argv):
  del argv
  sd = convert.load_torch_state_dict(_CKPT.value)
  layout = convert.detect_layout(sd)
  print(f'detected layout: {layout.describe()}')
  tset = convert.task_set_defaults(layout.num_tasks, _TASK_SET.value, _TASK.value)
  if tset:
    print(f"task set {tset['task_set']}: task {_TASK.value!r} has id {tset['task_id']}")
  lengths = [int(x) for x in _TASK_EPISODE_LENGTHS.value or tset.get('episode_lengths', [])]
  # Stored action masks are the file's own truth; the task set fills them in where absent.
  dims = ([int(x) for x in _ACTION_DIMS.value] if _ACTION_DIMS.value else
          None if layout.action_masks else tset.get('action_dims'))
  from_set = not _EPISODE_LENGTH.present and tset.get('task_id') is not None
  episode_length = (tset['episode_lengths'][tset['task_id']] if from_set
                    else _EPISODE_LENGTH.value)
  cfg, params, _ = convert.convert_state_dict(
      sd, action_dims=dims,
      task_discounts=[config.discount_for_episode(n) for n in lengths],
      episodic=None if _EPISODIC.value == 'auto' else _EPISODIC.value == 'true')
  pcfg = config.planner_config(cfg.action_dim, episode_length)
  out = checkpoint.export_agent(
      _OUT.value, cfg, params, pcfg,
      extra=dict(task=_TASK.value, episode_length=episode_length,
                 action_repeat=_ACTION_REPEAT.value, backend='dmc',
                 source=f'official TD-MPC2 checkpoint {_CKPT.value}',
                 model_size=convert.model_size_name(cfg),
                 **{k: tset[k] for k in ('task_set', 'task_id') if k in tset}))
  tasks = f', {cfg.num_tasks} tasks' if cfg.multitask else ''
  print(f'model size {convert.model_size_name(cfg)}{tasks}, episodic={cfg.episodic} ({cfg}); '
        f'exported to {out}')


if __name__ == '__main__':
  app.run(main)
