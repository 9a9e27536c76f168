"""Golden vectors from an official TD-MPC2 checkout (issue 13). Run OUTSIDE this repo's venv:

  /tmp/tvenv/bin/python tests/scripts/gen_official_golden.py --src /tmp/src_<rev>/tdmpc2 \
      --out tests/data/<name>.npz [--multitask] [--episodic] [--plan]

Builds the official WorldModel at a small size, perturbs every parameter (seeded), stores the
state dict (under sd/, taken before any forward pass: nn.Embedding(max_norm=1) renormalises
rows in place when they are looked up) and the outputs of every head for 4 random inputs. With
--plan (current revision only) it also runs TDMPC2._plan on a bare agent object and records
every random draw. Works with the first release (functorch Ensemble) and the tensordict layouts.
"""
import argparse
import sys
import types

import numpy as np
import torch

P = argparse.ArgumentParser()
P.add_argument('--src', required=True)
P.add_argument('--out', required=True)
P.add_argument('--multitask', action='store_true')
P.add_argument('--episodic', action='store_true')
P.add_argument('--plan', action='store_true')
P.add_argument('--dropout', type=float, default=0.01,
               help='0 for the first release: its vmapped Q members ignore eval() (dropout stays on)')
ARGS = P.parse_args()
sys.path.insert(0, ARGS.src)
from common.world_model import WorldModel  # pylint: disable=wrong-import-position

TASKS, ACTION_DIMS, EP_LENS = ['t0', 't1', 't2'], [3, 2, 1], [500, 100, 1000]


def make_cfg():
  return types.SimpleNamespace(
      multitask=ARGS.multitask, tasks=TASKS, task_dim=8 if ARGS.multitask else 0,
      action_dim=3, action_dims=ACTION_DIMS, obs_shape={'state': (7,)}, obs='state',
      num_enc_layers=3, enc_dim=48, latent_dim=32, mlp_dim=40, num_bins=101, simnorm_dim=8,
      num_q=5, dropout=ARGS.dropout, log_std_min=-10., log_std_max=2., episodic=ARGS.episodic,
      vmin=-10., vmax=10., bin_size=0.2, tau=0.01, num_channels=32, horizon=3, iterations=3,
      num_samples=64, num_elites=8, num_pi_trajs=6, temperature=0.5, min_std=0.05, max_std=2.,
      compile=False, mpc=True)


def build(cfg):
  torch.manual_seed(0)
  model = WorldModel(cfg)
  with torch.no_grad():
    for p in model.parameters():
      p.add_(0.3 * torch.randn_like(p))
    if cfg.multitask:  # one row well above the max_norm clamp, one well below
      model._task_emb.weight[0] *= 4.0
      model._task_emb.weight[1] *= 0.3
    head = getattr(model, '_termination', None) or getattr(model, '_terminated', None)
    if cfg.episodic and head is not None:  # centre the termination logits near 0 (p = 0.5)
      head[-1].bias += 1.0
  if hasattr(model, 'init'):
    model.init()  # tensordict layouts: re-derive the detached / target Q copies
  return model.eval()


def record(out, name, x):
  if torch.is_tensor(x):
    x = x.detach().cpu().numpy()
    x = x.astype(np.int32) if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32)
  out[name] = np.asarray(x)


def pi_outputs(model, z, task, eps, out):
  orig = torch.randn_like
  torch.randn_like = lambda t, *a, **k: eps.clone()
  try:
    res = model.pi(z, task)
  finally:
    torch.randn_like = orig
  if isinstance(res, tuple) and len(res) == 4:  # first release: mu, pi, log_pi, log_std
    mu, pi, log_pi, log_std = res
    record(out, 'pi_action', pi), record(out, 'pi_mean', mu), record(out, 'pi_log_std', log_std)
    record(out, 'pi_log_pi_v1', log_pi)
  else:
    action, info = res
    record(out, 'pi_action', action), record(out, 'pi_mean', info['mean'])
    record(out, 'pi_log_std', info['log_std']), record(out, 'pi_entropy', info['entropy'])
    record(out, 'pi_scaled_entropy', info['scaled_entropy'])


def heads(model, cfg, out):
  g = torch.Generator().manual_seed(1)
  B = 4
  obs = torch.randn(B, 7, generator=g)
  act = torch.rand(B, 3, generator=g) * 2 - 1
  task = torch.tensor([0, 1, 2, 1]) if cfg.multitask else None
  if cfg.multitask:
    act = act * model._action_masks[task]
    record(out, 'task', task.numpy())
  eps = torch.randn(B, 3, generator=g)
  record(out, 'obs', obs), record(out, 'act', act), record(out, 'pi_eps', eps)
  with torch.no_grad():
    z = model.encode(obs, task)
    record(out, 'z', z), record(out, 'next_z', model.next(z, act, task))
    record(out, 'reward_logits', model.reward(z, act, task))
    record(out, 'q_logits', model.Q(z, act, task, return_type='all'))
    record(out, 'target_q_logits', model.Q(z, act, task, return_type='all', target=True))
    head = getattr(model, 'termination', None) or getattr(model, 'terminated', None)
    if ARGS.episodic and head is not None:
      record(out, 'termination', head(z, None))
    pi_outputs(model, z, task, eps, out)


class Recorder:
  """Wraps the torch random functions _plan uses and keeps every draw in order."""

  def __init__(self):
    self.draws, self.orig = [], {}

  def __enter__(self):
    o = self.orig
    o['randn'], o['randn_like'], o['randperm'] = torch.randn, torch.randn_like, torch.randperm
    o['exp'] = torch.Tensor.exponential_
    def wrap(kind, fn):
      def f(*a, **k):
        r = fn(*a, **k)
        self.draws.append((kind, r.clone()))
        return r
      return f
    torch.randn, torch.randn_like = wrap('randn', o['randn']), wrap('randn_like', o['randn_like'])
    torch.randperm = wrap('randperm', o['randperm'])
    torch.Tensor.exponential_ = wrap('exp', o['exp'])
    return self

  def __exit__(self, *exc):
    o = self.orig
    torch.randn, torch.randn_like, torch.randperm = o['randn'], o['randn_like'], o['randperm']
    torch.Tensor.exponential_ = o['exp']


def plan(model, cfg, out, task):
  from tdmpc2 import TDMPC2  # pylint: disable=import-outside-toplevel
  agent = TDMPC2.__new__(TDMPC2)
  torch.nn.Module.__init__(agent)
  agent.cfg, agent.device, agent.model = cfg, torch.device('cpu'), model
  cfg.discount_denom, cfg.discount_min, cfg.discount_max = 5, 0.95, 0.995
  agent.discount = torch.tensor([agent._get_discount(e) for e in EP_LENS]) if cfg.multitask \
      else 0.99
  g = torch.Generator().manual_seed(2)
  prev = torch.rand(cfg.horizon, 3, generator=g) * 2 - 1
  obs = torch.randn(1, 7, generator=g)
  if cfg.multitask:
    prev = prev * model._action_masks[task]
  agent._prev_mean = torch.nn.Buffer(prev.clone())
  torch.manual_seed(3)
  t = torch.tensor([task]) if cfg.multitask else None
  with Recorder() as rec, torch.no_grad():
    action = agent._plan(obs, t0=False, eval_mode=False, task=t)
  kinds = [k for k, _ in rec.draws]
  H, I = cfg.horizon, cfg.iterations
  assert kinds == ['randn_like'] * H + ['randn', 'randn_like', 'randperm'] * I + ['exp', 'randn'], kinds
  d = [x for _, x in rec.draws]
  record(out, 'noise_pi_eps', torch.stack(d[:H]))
  it = d[H:H + 3 * I]
  record(out, 'noise_sample', torch.stack(it[0::3]))
  record(out, 'noise_value_pi_eps', torch.stack(it[1::3]))
  record(out, 'noise_q_idx', torch.stack([x[:2] for x in it[2::3]]).int())
  record(out, 'noise_gumbel', -torch.log(d[-2]))
  record(out, 'noise_act', d[-1])
  record(out, 'plan_obs', obs[0]), record(out, 'plan_prev_mean', prev)
  record(out, 'plan_action', action), record(out, 'plan_mean', agent._prev_mean)
  record(out, 'plan_task', np.int32(task)), record(out, 'plan_discount', agent.discount)


def main():
  cfg = make_cfg()
  model = build(cfg)
  out = {}
  kept = {}
  for k, v in model.state_dict().items():
    if not torch.is_tensor(v) or v.device.type == 'meta':
      continue
    twin = next((j for j, u in kept.items() if u.shape == v.shape and torch.equal(u, v)), None)
    if twin is not None and 'Qs' in k:  # duplicated Q copies: stored once, rebuilt by the test
      out['dup/' + k] = np.asarray(twin)
    else:
      kept[k] = v
      out['sd/' + k] = v.detach().cpu().numpy().copy()
  heads(model, cfg, out)
  if ARGS.plan:
    plan(model, cfg, out, task=1 if cfg.multitask else 0)
  record(out, 'torch_version', torch.__version__)
  np.savez_compressed(ARGS.out, **out)
  print(ARGS.out, sorted(k for k in out if not k.startswith('sd/')))


if __name__ == '__main__':
  main()
