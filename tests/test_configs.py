"""Every experiment config loads; variants build on their base through builders.config_module."""
import glob
import os

import pytest

from spec_jax import builders

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(f for f in glob.glob(os.path.join(ROOT, 'experiments', '*.py'))
                 if not os.path.basename(f).startswith('_'))


def _load(path):
  return builders.load_module(path).get_config()


@pytest.mark.parametrize('path', CONFIGS, ids=[os.path.basename(p) for p in CONFIGS])
def test_every_experiment_config_loads(path):
  cfg = _load(path)
  if 'model_size' in cfg:   # a training config: the builders accept it
    builders.check_config(cfg)


def test_variants_override_only_what_they_name():
  base = _load(os.path.join(ROOT, 'experiments', 'dmc_cpu.py'))
  run = _load(os.path.join(ROOT, 'experiments', 'walker_run_cpu.py'))
  assert run.task == 'walker-run' and base.task == 'walker-walk'
  run.task = base.task
  assert run.to_dict() == base.to_dict()
  more = _load(os.path.join(ROOT, 'experiments', 'evaluate_suite_h6_more.py'))
  assert more.base_planner.horizon == 6 and more.spec_planner.horizon == 6 and more.baseline


def test_config_module_names_a_missing_base(tmp_path):
  with pytest.raises(FileNotFoundError, match='no_such_base.py'):
    builders.config_module(str(tmp_path / 'variant.py'), 'no_such_base.py')


BASES = ('dmc_cpu', 'humanoid_dmc', 'humanoid_mjx', 'tiny', 'tiny_mjx')


def test_training_configs_override_one_base_run_schedule():
  default = _load(os.path.join(ROOT, 'experiments', 'default.py'))
  assert builders.run_config(default) == builders.RunConfig()   # one source of defaults
  for name in BASES:
    cfg = _load(os.path.join(ROOT, 'experiments', f'{name}.py'))
    assert set(cfg.keys()) == set(default.keys()), name      # no key of its own
    source = open(os.path.join(ROOT, 'experiments', f'{name}.py')).read()
    assert "config_module(__file__, 'default.py')" in source or name == 'tiny_mjx', name
    assert isinstance(builders.run_config(cfg), builders.RunConfig)
  mjx = builders.run_config(_load(os.path.join(ROOT, 'experiments', 'tiny_mjx.py')))
  assert mjx.batched and mjx.num_envs == 4 and mjx.backend == 'mjx'
