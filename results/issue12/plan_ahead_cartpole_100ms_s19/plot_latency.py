"""Decision latency of the cartpole no-wait executors at an emulated 100 ms period, before and
after session 19's decision-path change (and the E = 3 row of the run with the paper's
executor, seeds 420..429), as a share of the baseline's median plan call in the
same run. Reads the evaluation CSVs next to this file; writes latency.png.

  python results/issue12/plan_ahead_cartpole_100ms_s19/plot_latency.py
"""
import csv
import os

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = (('before', 'old code, seeds 400..409'), ('after', 'new code, seeds 400..409'),
        ('after_rep', 'new code, seeds 410..419'), ('paper', 'new code, seeds 420..429'))


def rows(name):
  with open(os.path.join(HERE, name, 'evaluation.csv')) as f:
    out = list(csv.DictReader(f))
  plan = float(next(r for r in out if r['mode'] == 'baseline')['step_ms_median'])
  return [(f"E = {r['exec_len']}", 100 * float(r['step_ms_median']) / plan,
           100 * float(r['step_ms_p99']) / plan) for r in out if r['ahead'] == '1']


def main():
  fig, ax = plt.subplots(figsize=(7, 4))
  width, labels = 0.2, None
  for i, (name, title) in enumerate(RUNS):
    if not os.path.exists(os.path.join(HERE, name, 'evaluation.csv')):
      continue
    r = rows(name)
    names = ['E = 3', 'E = 1']
    labels = [n + ', lead 1, defer' for n in names]
    xs = [names.index(x[0]) + (i - 1.5) * width for x in r]
    ax.bar(xs, [x[2] for x in r], width, label=f'p99, {title}', alpha=0.85)
    ax.scatter(xs, [x[1] for x in r], color='k', marker='_', s=200, zorder=3,
               label='p50' if i == 0 else None)
  ax.axhline(10, color='r', ls=':', label="issue 12.1's target (p99 <= 10%)")
  ax.set_xticks(range(len(labels)), labels)
  ax.set_ylabel('decision latency, % of the baseline\nmedian plan call (same run)')
  ax.set_title('cartpole, MLP corrector, paced at 100 ms (2-core CPU)')
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(HERE, 'latency.png'), dpi=120)


if __name__ == '__main__':
  main()
