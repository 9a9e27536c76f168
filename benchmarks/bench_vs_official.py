"""Official PyTorch TD-MPC2 planner vs the spec_jax planner, same weights, same CPU, one run.

  pip install -e '.[torch]' tensordict
  python benchmarks/bench_vs_official.py --tdmpc2_src /path/to/tdmpc2/tdmpc2 [--sizes 1 5]

``--tdmpc2_src`` is the ``tdmpc2/`` folder of a checkout of nicklashansen/tdmpc2 (not shipped
with spec_jax). Both planners use the official defaults for humanoid (obs 67, action 21: 512
samples, 8 iterations, horizon 3); the official one runs eagerly (torch.compile targets CUDA
graphs). Median ms per plan call after warm-up/compile, the two planners' calls alternated;
GFLOP per plan call counted from the layer shapes (``planner.plan_flops``: the official
planner recomputes z0's share of the first dynamics/reward layer for every sample and re-rolls
the policy-prior trajectories in every iteration, spec_jax does each once per plan) and the
GFLOP/s each achieves. With ``--bfloat16 1`` (default) two more planners are interleaved:
spec_jax with bfloat16 matrix products (float32 accumulation; ``PlannerConfig.matmul_dtype``,
a deliberate deviation from the official float32 arithmetic) and the official planner under
``torch.autocast('cpu', dtype=torch.bfloat16)``; rows: float32 vs float32, spec_jax bfloat16 vs
official float32, bfloat16 vs bfloat16.
"""
import argparse
import dataclasses
import statistics
import sys
import time
import types

import jax
import jax.numpy as jnp


def _official_cfg(size, obs_dim, action_dim):
  from spec_jax import config
  arch = config.MODEL_SIZES[size]
  cfg = types.SimpleNamespace(
      obs='state', obs_shape={'state': (obs_dim,)}, action_dim=action_dim, num_bins=101,
      vmin=-10., vmax=10., simnorm_dim=8, dropout=0.01, log_std_min=-10, log_std_max=2,
      multitask=False, episodic=False, task_dim=0, tau=0.01, horizon=3,
      iterations=6 + 2 * int(action_dim >= 20), num_samples=512, num_elites=64, num_pi_trajs=24,
      min_std=0.05, max_std=2., temperature=0.5, num_channels=32, get=lambda k, d=None: None, **arch)
  cfg.bin_size = 0.2
  return cfg


def _median_ms_interleaved(fns, repeats):
  """Median ms per call of each fn, after one warm-up call each, with the calls interleaved
  (a, b, c, a, b, c, ...) so that all see the same host load: this machine's plan time drifts
  by 10-15% over minutes, more than the difference being measured."""
  for fn in fns:
    fn(0)
  times = [[] for _ in fns]
  for i in range(repeats):
    for fn, ts in zip(fns, times):
      t = time.perf_counter()
      fn(i + 1)
      ts.append(1e3 * (time.perf_counter() - t))
  return [statistics.median(ts) for ts in times]


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--tdmpc2_src', required=True)
  p.add_argument('--sizes', type=int, nargs='+', default=(1, 5))
  p.add_argument('--repeats', type=int, default=10)
  p.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
  p.add_argument('--bfloat16', type=int, default=1, choices=(0, 1),
                 help="1: also time spec_jax with PlannerConfig.matmul_dtype='bfloat16' and the "
                      'official planner under torch.autocast(bfloat16), interleaved in the same loop')
  args = p.parse_args()
  sys.path.insert(0, args.tdmpc2_src)
  import torch
  from common.world_model import WorldModel  # official code, from --tdmpc2_src
  import tdmpc2 as official
  from spec_jax import config, convert, planner, world_model
  if args.threads:
    torch.set_num_threads(args.threads)
  print(f'torch {torch.__version__} ({torch.get_num_threads()} threads), jax {jax.__version__} '
        f'({jax.devices()[0].device_kind})')
  print('\n| model | official GFLOP/plan | spec_jax GFLOP/plan | official PyTorch ms/plan | '
        'spec_jax ms/plan | official GFLOP/s | spec_jax GFLOP/s | speed-up (official / spec_jax) |'
        '\n|---|---|---|---|---|---|---|---|')
  for size in args.sizes:
    cfg = _official_cfg(size, 67, 21)
    torch.manual_seed(0)
    wm = WorldModel(cfg)
    wm.eval()
    agent = official.TDMPC2.__new__(official.TDMPC2)
    torch.nn.Module.__init__(agent)
    agent.cfg, agent.device, agent.model, agent.discount = cfg, torch.device('cpu'), wm, 0.99
    agent._prev_mean = torch.zeros(cfg.horizon, cfg.action_dim)
    obs = torch.randn(1, 67)

    def official_runner(bf16):
      def run(i):
        with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
          agent._plan(obs, t0=False, eval_mode=False)
      return run

    sd = {k: v.detach().numpy() for k, v in wm.state_dict().items()
          if isinstance(v, torch.Tensor) and v.device.type != 'meta'}
    mcfg, params, _ = convert.convert_state_dict(sd)
    model = world_model.WorldModel(mcfg)
    pcfg = config.planner_config(21, 500)
    state = planner.init_state(pcfg, 21)
    jobs = jnp.asarray(obs.numpy()[0])

    def jax_runner(cfg):
      return lambda i: jax.block_until_ready(planner.plan(
          model, params, cfg, state, jobs, jax.random.PRNGKey(i), False)[0].action)

    fns = [official_runner(False), jax_runner(pcfg)]
    if args.bfloat16:
      fns += [official_runner(True), jax_runner(dataclasses.replace(pcfg, matmul_dtype='bfloat16'))]
    ms = _median_ms_interleaved(fns, args.repeats)
    gf_t, gf_j = (planner.plan_flops(mcfg, pcfg, official=o) / 1e9 for o in (True, False))
    rows = [('', 0, 1)]
    if args.bfloat16:   # (label, official timing, spec_jax timing)
      rows += [(', spec_jax bfloat16 vs official float32', 0, 3),
               (', both bfloat16 (official: torch.autocast)', 2, 3)]
    for label, i, j in rows:
      print(f'| {size}M{label} | {gf_t:.1f} | {gf_j:.1f} | {ms[i]:.1f} | {ms[j]:.1f} | '
            f'{1e3 * gf_t / ms[i]:.0f} | {1e3 * gf_j / ms[j]:.0f} | {ms[i] / ms[j]:.2f} |',
            flush=True)


if __name__ == '__main__':
  main()
