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
  if 'backend' in cfg:   # a training config: the builders accept it
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
