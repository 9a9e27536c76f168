"""Pooled float32 vs bfloat16 return check: seeds 240..249 and 250..269, 30 paired episodes of
one agent (independent episodes: no clustering). Argument: wr (walker-run, default) or cr
(cheetah-run).
  python results/issue11/bf16_planner/pool30.py wr > results/issue11/bf16_planner/walker-run_pooled30.txt
  python results/issue11/bf16_planner/pool30.py cr > results/issue11/bf16_planner/cheetah-run_pooled30.txt"""
import csv
import sys
import numpy as np
from spec_jax import reporting

B = 'results/issue11/bf16_planner/evals/'
rets = lambda p: [float(x) for x in list(csv.DictReader(open(p)))[0]['returns_per_seed'].split()]
A = sys.argv[1] if len(sys.argv) > 1 else 'wr'
f32 = rets(B + f'{A}_f32.csv') + rets(B + f'{A}2_f32.csv')
b16 = rets(B + f'{A}_bf16.csv') + rets(B + f'{A}2_bf16.csv')
st = reporting.paired_stats(b16, f32)
print(f"{dict(wr='walker-run', cr='cheetah-run')[A]}, seeds 240..269 (30 paired episodes), "
      'float32 vs bfloat16 products')
for name, r in (('float32', f32), ('bfloat16', b16)):
  print(f'{name:8s} {np.mean(r):.1f} +- {np.std(r):.1f}, median {np.median(r):.1f}, '
        f'failed (below half the float32 median) {sum(x < np.median(f32) / 2 for x in r)}')
print({k: round(float(v), 3) for k, v in st.items() if np.ndim(v) == 0})
