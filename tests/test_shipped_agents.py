"""The trained agents shipped in agents/: size limits, cards, loading, planning, correctors."""
import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import checkpoint
from spec_jax import planner
from spec_jax import speculation as sp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AGENTS = sorted(d for d in glob.glob(os.path.join(ROOT, 'agents', '*')) if os.path.isdir(d))
MB = 1024 * 1024


def _size(path):
  return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def test_agents_are_shipped_within_size_limits():
  assert AGENTS, 'no shipped agents in agents/'
  sizes = {os.path.basename(a): _size(a) for a in AGENTS}
  assert all(s < 6 * MB for s in sizes.values()), sizes
  assert sum(sizes.values()) < 25 * MB, sizes


# The README's main-job agent runs by default, the others with -m slow (a compile each).
@pytest.mark.parametrize('path', [a if a.endswith('cheetah-run') else
                                  pytest.param(a, marks=pytest.mark.slow) for a in AGENTS],
                         ids=[os.path.basename(a) for a in AGENTS])
def test_shipped_agent_loads_plans_and_corrects(path):
  card = open(os.path.join(path, 'CARD.md')).read()
  for field in ('task', 'env steps', 'eval return', 'command'):
    assert field in card.lower(), field
  model, params, pcfg, cors, meta = checkpoint.load_with_correctors(path)
  extra = meta['extra']
  assert extra['task'] in card and set(cors) == {'mlp', 'transformer'}
  assert len(extra['mismatch_quantiles']) == 101
  assert extra['env_step'] == extra['agent_step'] * extra['action_repeat']
  obs = jnp.sin(jnp.arange(model.cfg.obs_dim, dtype=jnp.float32))
  res, _ = planner.plan(model, params, pcfg, planner.init_state(pcfg, model.cfg.action_dim), obs,
                        jax.random.PRNGKey(0), True, True)
  assert res.action.shape == (model.cfg.action_dim,) and bool(jnp.all(jnp.isfinite(res.action)))
  cor, cparams = cors['mlp']
  cfg = sp.SpecConfig(mode='mlp', exec_len=3, history=cor.cfg.history)
  ex = sp.Executor(model, pcfg, cfg, cor)
  state = sp.init_state(ex)
  for t in range(3):
    a, state, info = sp.step(ex, sp.ExecParams(params, cparams), state, obs + 0.01 * t,
                             jax.random.PRNGKey(t), 1e9, t == 0)
    assert np.all(np.isfinite(a)) and np.all(np.abs(a) <= 1)
  assert int(state.corrections) == 2
