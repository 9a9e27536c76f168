"""The official TD-MPC2 multitask task sets (mt30, mt80): task order, action dimensions and
episode lengths, so official multitask checkpoints convert without hand-typed lists.

Task ids are indices into these tuples (the order the official code trains and embeds them
in). DMC tasks: 500 agent steps (1000 control steps at action repeat 2); Meta-World ('mw-')
tasks: 100 agent steps. The 11 custom DMC tasks (e.g. 'walker-walk-backwards') are defined by
the official repository, not by dm_control; ``in_dm_control`` says which tasks dm_control
itself provides.
"""
from typing import Optional, Tuple

_DMC19 = ('walker-stand', 'walker-walk', 'walker-run', 'cheetah-run', 'reacher-easy',
          'reacher-hard', 'acrobot-swingup', 'pendulum-swingup', 'cartpole-balance',
          'cartpole-balance-sparse', 'cartpole-swingup', 'cartpole-swingup-sparse', 'cup-catch',
          'finger-spin', 'finger-turn-easy', 'finger-turn-hard', 'fish-swim', 'hopper-stand',
          'hopper-hop')
_CUSTOM11 = ('walker-walk-backwards', 'walker-run-backwards', 'cheetah-run-backwards',
             'cheetah-run-front', 'cheetah-run-back', 'cheetah-jump', 'hopper-hop-backwards',
             'reacher-three-easy', 'reacher-three-hard', 'cup-spin', 'pendulum-spin')
_MW50 = tuple('mw-' + n for n in (
    'assembly', 'basketball', 'button-press-topdown', 'button-press-topdown-wall',
    'button-press', 'button-press-wall', 'coffee-button', 'coffee-pull', 'coffee-push',
    'dial-turn', 'disassemble', 'door-open', 'door-close', 'drawer-close', 'drawer-open',
    'faucet-open', 'faucet-close', 'hammer', 'handle-press-side', 'handle-press',
    'handle-pull-side', 'handle-pull', 'lever-pull', 'peg-insert-side', 'peg-unplug-side',
    'pick-out-of-hole', 'pick-place', 'pick-place-wall', 'plate-slide', 'plate-slide-side',
    'plate-slide-back', 'plate-slide-back-side', 'push-back', 'push', 'push-wall', 'reach',
    'reach-wall', 'shelf-place', 'soccer', 'stick-push', 'stick-pull', 'sweep-into', 'sweep',
    'window-open', 'window-close', 'bin-picking', 'box-close', 'door-lock', 'door-unlock',
    'hand-insert'))

TASK_SETS = {'mt30': _DMC19 + _CUSTOM11, 'mt80': _DMC19 + _CUSTOM11 + _MW50}

# Actuators per DMC domain ('reacher-three' is the official 3-link reacher); Meta-World: 4.
_DOMAIN_ACTIONS = {'walker': 6, 'cheetah': 6, 'reacher': 2, 'reacher-three': 3, 'acrobot': 1,
                   'pendulum': 1, 'cartpole': 1, 'cup': 2, 'finger': 2, 'fish': 5, 'hopper': 4}


def tasks(task_set: str) -> Tuple[str, ...]:
  if task_set not in TASK_SETS:
    raise ValueError(f'unknown task set {task_set!r}; known: {sorted(TASK_SETS)}')
  return TASK_SETS[task_set]


def for_num_tasks(num_tasks: int) -> Optional[str]:
  """The official task set with ``num_tasks`` tasks ('mt30' / 'mt80'), or None."""
  return next((k for k, v in TASK_SETS.items() if len(v) == num_tasks), None)


def action_dim(task: str) -> int:
  if task.startswith('mw-'):
    return 4
  domain = 'reacher-three' if task.startswith('reacher-three') else task.split('-')[0]
  if domain not in _DOMAIN_ACTIONS:
    raise ValueError(f'no action dimension known for task {task!r}')
  return _DOMAIN_ACTIONS[domain]


def episode_length(task: str) -> int:
  """Agent steps per episode (after the official action repeat of 2)."""
  return 100 if task.startswith('mw-') else 500


def action_dims(task_set: str) -> Tuple[int, ...]:
  return tuple(action_dim(t) for t in tasks(task_set))


def episode_lengths(task_set: str) -> Tuple[int, ...]:
  return tuple(episode_length(t) for t in tasks(task_set))


def task_id(task_set: str, task: str) -> int:
  """Index of ``task`` in the set's training order (the task embedding row)."""
  names = tasks(task_set)
  if task not in names:
    raise ValueError(f'task {task!r} is not in {task_set} ({len(names)} tasks)')
  return names.index(task)


def in_dm_control(task: str) -> bool:
  """Whether dm_control itself provides the task (not a custom or Meta-World task)."""
  return task in _DMC19
