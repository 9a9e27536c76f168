"""Held-out error AND action statistics of exported MLP correctors on a distillation dataset:
a corrector can lower the MSE to a stochastic teacher by shrinking its actions towards the
teacher's conditional mean, which a closed loop may not tolerate (BUILD_NOTES session 11).

  python benchmarks/corrector_action_stats.py --dataset runs/wr_distill_pipelined/dataset.npz \
      --exports agents/walker-run runs/wr_distill_pipelined_best/export

The held-out episodes are those ``distill.train`` holds out for seed ``--seed`` and fraction
``--holdout`` (the distillation config's).
"""
import argparse

import jax
import jax.numpy as jnp

from spec_jax import checkpoint
from spec_jax import distill


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--dataset', required=True)
  p.add_argument('--exports', nargs='+', required=True)
  p.add_argument('--kind', default='mlp')
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--holdout', type=float, default=0.17)
  args = p.parse_args()
  data = distill.load_dataset(args.dataset)
  train_key = jax.random.fold_in(jax.random.PRNGKey(args.seed), 1)   # as distill._train_kinds
  _, test = distill.train_test_split(data, args.holdout, train_key)
  mse = lambda a: float(jnp.mean(jnp.square(a - test.a_teacher)))
  mag = lambda a: float(jnp.mean(jnp.abs(a)))
  sat = lambda a: float(jnp.mean(jnp.abs(a) > 0.9))
  print(f'{test.d.shape[0]} held-out tuples; teacher mean |a| {mag(test.a_teacher):.3f}, '
        f'|a| > 0.9: {sat(test.a_teacher):.2f}; uncorrected MSE {mse(test.a_spec):.3f}, '
        f'mean |a| {mag(test.a_spec):.3f}, |a| > 0.9: {sat(test.a_spec):.2f}')
  print('\n| export | held-out MSE | mean abs(action) | share of abs(action) > 0.9 |\n|---|---|---|---|')
  for path in args.exports:
    cors = checkpoint.load_with_correctors(path)[3]
    if args.kind not in cors:
      raise ValueError(f'{path} has no {args.kind!r} corrector (has {sorted(cors)})')
    cor, cparams = cors[args.kind]
    a = cor.correct(cparams, test.history, test.valid, test.a_spec)
    print(f'| {path} | {mse(a):.3f} | {mag(a):.3f} | {sat(a):.2f} |')


if __name__ == '__main__':
  main()
