"""Robust return statistics, paired comparisons, task-relative tau, labelled plots."""
import os

import numpy as np
import pytest

from spec_jax import evaluation
from spec_jax import reporting


def test_return_stats_and_failed_count_on_bimodal_returns():
  # Ten paired episodes: two collapse to ~0 in every mode, as seen on a new DMC task.
  base = [700, 710, 0, 705, 720, 0, 690, 715, 708, 712]
  spec = [630, 640, 0, 620, 650, 5, 610, 645, 634, 636]
  s = reporting.return_stats(base, fail_below=0.5 * np.median(base))
  assert s['return_median'] == pytest.approx(706.5)          # (705 + 708) / 2
  assert s['failed'] == 2
  assert s['return_q25'] == pytest.approx(692.5) and s['return_q75'] == pytest.approx(711.5)
  assert s['return_mean'] == pytest.approx(566.0)
  p = reporting.paired_stats(spec, base)
  diffs = np.array(spec) - np.array(base)
  assert p['diff_mean'] == pytest.approx(diffs.mean())       # -56.0
  assert p['diff_median'] == pytest.approx(np.median(diffs))  # -72.0
  assert p['ratio'] == pytest.approx(sum(spec) / sum(base))
  assert p['ratio_lo'] < p['ratio'] < p['ratio_hi'] < 1.0     # consistently worse per seed


def test_add_robust_stats_uses_baseline_median_for_failures():
  rows = [dict(mode='baseline', returns=[100, 100, 100, 10]),
          dict(mode='spec', returns=[100, 40, 60, 10])]
  reporting.add_robust_stats(rows)
  assert rows[0]['fail_below'] == 50.0
  assert rows[0]['failed'] == 1 and rows[1]['failed'] == 2
  assert rows[1]['diff_mean'] == pytest.approx(-25.0)
  with pytest.raises(ValueError, match='same 1-D shape'):
    reporting.paired_stats([1, 2], [1, 2, 3])


def test_tau_quantile_conversion_on_a_known_distribution():
  d = np.arange(0, 1001) / 1000.0            # uniform on [0, 1]: quantile q <-> tau q
  qs = reporting.mismatch_quantiles(d)
  assert len(qs) == 101
  assert reporting.tau_from_quantile(0.9, qs) == pytest.approx(0.9)
  assert reporting.quantile_of_tau(0.25, qs) == pytest.approx(0.25)
  assert reporting.quantile_of_tau(-1.0, qs) == 0.0 and reporting.quantile_of_tau(5.0, qs) == 1.0
  sq = reporting.mismatch_quantiles(d ** 2)  # tau = x^2 at quantile x
  assert reporting.tau_from_quantile(0.5, sq) == pytest.approx(0.25, abs=1e-3)
  assert reporting.quantile_of_tau(0.04, sq) == pytest.approx(0.2, abs=1e-3)
  pairs = reporting.resolve_taus([0.25], [0.5], sq)
  assert pairs[0] == pytest.approx((0.25, 0.5), abs=1e-3)
  assert pairs[1] == pytest.approx((0.25, 0.5), abs=1e-3)
  with pytest.raises(ValueError, match='no stored mismatch'):
    reporting.resolve_taus([], [0.5], None)
  with pytest.raises(ValueError, match=r'\[0, 1\]'):
    reporting.tau_from_quantile(1.5, qs)


def test_grid_resolves_quantiles_and_puts_baseline_first():
  qs = reporting.mismatch_quantiles(np.arange(0, 101) / 100.0)
  pts = evaluation.grid([dict(modes=('spec', 'mlp'), exec_lens=(3,), taus=(0.5,),
                              tau_quantiles=(0.9,)),
                         dict(modes=('spec',), exec_lens=(3,), taus=(0.5,))], qs)
  assert pts[0].mode == 'baseline' and len(pts) == 5   # duplicate spec/3/0.5 dropped
  assert pts[2].tau == pytest.approx(0.9) and pts[2].tau_q == pytest.approx(0.9)
  assert pts[1].tau_q == pytest.approx(0.5)
  later = evaluation.grid([dict(modes=('spec',), exec_lens=(3, 2), taus=(0.5,))], qs,
                          baseline=False)   # a later pass pairs with an earlier baseline
  assert [(p.mode, p.exec_len) for p in later] == [('spec', 3), ('spec', 2)]


def test_plot_labels_every_point(tmp_path):
  rows = [dict(mode='baseline', tau=float('inf'), tau_q=float('nan'), exec_len=1,
               planner_calls=500, returns=[1, 2, 3]),
          dict(mode='mlp', tau=0.5, tau_q=0.93, exec_len=3, planner_calls=200, returns=[1, 2, 2])]
  reporting.add_robust_stats(rows)
  assert reporting.point_label(rows[1]) == 'mlp tau=0.5 (q0.93) H=3'
  path = str(tmp_path / 'p.png')
  reporting.plot_return_vs_calls(rows, path)
  assert os.path.getsize(path) > 5000


def _row(mode, returns, calls, **kw):
  r = dict(mode=mode, gate='norm', ahead=0, online=0, tau=float('inf') if mode == 'baseline'
           else 0.5, tau_q=float('nan'), exec_len=1 if mode == 'baseline' else 3, horizon=6,
           returns=list(returns), planner_calls=calls, on_reject='replan', ahead_lead=0)
  r.update(kw)
  return r


def test_pool_concatenates_seed_sets_and_pairs_each_with_its_own_baseline(tmp_path):
  a = [_row('baseline', [100, 200], 500), _row('mlp', [90, 210], 100, deferred=0.0, nonfinite=2.0),
       _row('spec', [1, 2], 7)]
  b = [_row('baseline', [1, 1, 1], 500, horizon=3),     # another horizon first: not THE baseline
       _row('baseline', [300, 100, 200], 500), _row('mlp', [150, 100, 200], 40, nonfinite=1.0),
       _row('transformer', [5, 5, 5], 9)]
  pa = evaluation.write_outputs(a, str(tmp_path / 'a'))['csv']
  pb = evaluation.write_outputs(b, str(tmp_path / 'b'))['csv']
  logged = []
  rows, paths = evaluation.pool([pa, pb], str(tmp_path / 'p'), 6, log_fn=logged.append)
  assert [r['mode'] for r in rows] == ['baseline', 'mlp']        # spec, transformer: one set
  assert 'spec' in logged[0] and 'transformer' in logged[0]
  mlp = rows[1]
  assert mlp['returns'] == [90, 210, 150, 100, 200] and mlp['episodes'] == 5
  # 150 / 180; per-seed differences -10, 10, -150, 0, 0; calls (2 x 100 + 3 x 40) / 5;
  # deferred only in set a (b's column blank): its value; non-finite steps: totals, 2 + 1.
  np.testing.assert_allclose([mlp['ratio'], mlp['diff_mean'], mlp['diff_median']],
                             [150 / 180, -30, 0])
  np.testing.assert_allclose([mlp['planner_calls'], mlp['deferred'], mlp['nonfinite']],
                             [64, 0, 3])
  assert rows[0]['return_mean'] == 180 and os.path.exists(paths['md'])
  bad = [_row('baseline', [1, 2], 500), _row('mlp', [1, 2, 3], 9)]
  with pytest.raises(ValueError, match='episode count'):
    evaluation.pool([evaluation.write_outputs(bad, str(tmp_path / 'c'))['csv']],
                    str(tmp_path / 'q'), 6)
  with pytest.raises(ValueError, match='no baseline'):
    evaluation.pool([pa], str(tmp_path / 'q'), 3)
  with pytest.raises(ValueError, match='same seed set'):
    evaluation.pool([pa, pa], str(tmp_path / 'q'), 6)


def test_compare_agents_pairs_training_arms_seed_by_seed(tmp_path):
  # Arms of two training seeds each (files [2] + [1] episodes); only baseline rows count.
  def evals(name, *per_file, horizon=6):
    return [evaluation.write_outputs([_row('baseline', r, 500, horizon=horizon),
                                      _row('mlp', [0] * len(r), 9)],
                                     str(tmp_path / f'{name}{i}'))['csv']
            for i, r in enumerate(per_file)]
  plain = evals('p', [10, 20], [30])
  spec = evals('s', [12, 18], [36])
  short = evals('c', [4, 20], [30])
  rows, paths = evaluation.compare_agents([plain, spec, short], ['plain', 'spec', 'c'],
                                          str(tmp_path / 'cmp'))
  assert [r['returns'] for r in rows] == [[10, 20, 30], [12, 18, 36], [4, 20, 30]]
  assert [(r['evaluations'], r['episodes']) for r in rows] == [(2, 3)] * 3
  # spec vs plain: 66 / 60, differences 2, -2, 6; c: 54 / 60, differences -6, 0, 0, and one
  # episode below half the reference median (4 < 10; 10 itself does not fail).
  np.testing.assert_allclose([rows[1]['ratio'], rows[1]['diff_mean'], rows[1]['diff_median']],
                             [1.1, 2, 2])
  np.testing.assert_allclose([rows[2]['ratio'], rows[2]['diff_mean'], rows[2]['diff_median']],
                             [0.9, -2, 0])
  assert [r['failed'] for r in rows] == [0, 0, 1] and rows[0]['fail_below'] == 10
  assert rows[0]['ratio'] == 1 and os.path.exists(paths['md'])
  # The CI clusters episodes by training seed (file slot): groups [0, 0, 1], not episodes.
  by_seed = reporting.paired_stats([12, 18, 36], [10, 20, 30], groups=[0, 0, 1])
  by_episode = reporting.paired_stats([12, 18, 36], [10, 20, 30])
  assert (rows[1]['ratio_lo'], rows[1]['ratio_hi']) == (by_seed['ratio_lo'], by_seed['ratio_hi'])
  assert (by_seed['ratio_lo'], by_seed['ratio_hi']) != (by_episode['ratio_lo'],
                                                        by_episode['ratio_hi'])
  with open(paths['csv']) as f:
    lines = f.read().splitlines()
  assert lines[0].startswith('agent,evaluations,episodes,') and lines[2].split(',')[0] == 'spec'
  assert lines[2].endswith(',12.0 18.0 36.0,')   # seeds_per_episode blank: none recorded
  explicit, _ = evaluation.compare_agents([plain, short], ['plain', 'c'], str(tmp_path / 'e'),
                                          fail_below=25)
  assert [r['failed'] for r in explicit] == [2, 2]
  for arms, labels, match in [([plain], ['a'], 'need >= 2 arms'),
                              ([plain, spec], ['a'], 'need >= 2 arms'),
                              ([plain, spec], ['a', 'a'], 'distinct label'),
                              ([plain, spec[:1]], ['a', 'b'], 'as many evaluation files'),
                              ([[], []], ['a', 'b'], 'as many evaluation files'),
                              ([plain, evals('d', [1], [2, 3])], ['a', 'b'], 'not paired'),
                              ([plain, evals('h', [1, 2], [3], horizon=3)], ['a', 'b'],
                               'not paired'),
                              ([evals('z', [0, 0], [5]), spec], ['a', 'b'], 'pass fail_below')]:
    with pytest.raises(ValueError, match=match):
      evaluation.compare_agents(arms, labels, str(tmp_path / 'x'))
  two = evaluation.write_outputs([_row('baseline', [1], 500), _row('baseline', [2], 500,
                                                                     horizon=3)],
                                 str(tmp_path / 'two'))['csv']
  with pytest.raises(ValueError, match='one baseline row'):
    evaluation.compare_agents([[two], [two]], ['a', 'b'], str(tmp_path / 'x'))


def test_clustered_bootstrap_resamples_training_seeds_not_only_episodes():
  # Two agents per arm, five episodes each, no spread within an agent: agent 1 doubles the
  # reference, agent 2 matches it. Episode resampling sees 20 values and a narrow CI around
  # 1.5; cluster resampling draws (1, 1), (1, 2), (2, 1) or (2, 2), so its CI reaches both
  # ends: 1.0 (twice agent 2) and 2.0 (twice agent 1).
  base = [10.0] * 10
  arm = [20.0] * 5 + [10.0] * 5
  groups = [0] * 5 + [1] * 5
  flat = reporting.paired_stats(arm, base)
  clus = reporting.paired_stats(arm, base, groups=groups)
  assert flat['ratio'] == clus['ratio'] == 1.5
  assert 1.1 < flat['ratio_lo'] and flat['ratio_hi'] < 1.9
  assert clus['ratio_lo'] == pytest.approx(1.0) and clus['ratio_hi'] == pytest.approx(2.0)
  with pytest.raises(ValueError, match='groups must have shape'):
    reporting.paired_stats(arm, base, groups=[0, 1])


def test_episode_seeds_are_recorded_and_checked_when_files_are_merged(tmp_path):
  def file(name, rows):
    return evaluation.write_outputs(rows, str(tmp_path / name))['csv']
  a = file('a', [_row('baseline', [10, 20], 500, seeds=[300, 301]),
                 _row('mlp', [9, 21], 50, seeds=[300, 301])])
  back = evaluation.read_rows(a)
  assert [r['seeds'] for r in back] == [[300, 301], [300, 301]]
  old = file('old', [_row('baseline', [10, 20], 500)])           # no seeds recorded
  with open(tmp_path / 'bad.csv', 'w') as f:
    f.write('mode,horizon\nbaseline,3\n')
  with pytest.raises(ValueError, match=r"not an evaluation file .*'exec_len', 'returns_per_seed'"):
    evaluation.read_rows(str(tmp_path / 'bad.csv'))
  assert evaluation.read_rows(old)[0]['seeds'] is None
  other = file('o', [_row('baseline', [11, 19], 500, seeds=[302, 303])])
  # Agents compared slot by slot: same seeds pass (and are written), other seeds are refused,
  # a file without seeds is not checked.
  rows, paths = evaluation.compare_agents([[a], [file('b', [_row('baseline', [12, 18], 500,
                                                                  seeds=[300, 301])])]],
                                          ['x', 'y'], str(tmp_path / 'c'))
  assert [r['seeds'] for r in rows] == [[300, 301]] * 2
  with open(paths['csv']) as f:
    assert f.read().splitlines()[1].endswith(',10.0 20.0,300 301')
  with pytest.raises(ValueError, match='seeds .302, 303.*not paired'):
    evaluation.compare_agents([[a], [other]], ['x', 'y'], str(tmp_path / 'c'))
  rows, _ = evaluation.compare_agents([[a], [old]], ['x', 'y'], str(tmp_path / 'c'))
  assert rows[0]['seeds'] == [300, 301] and rows[1]['seeds'] is None
  # Two training seeds per arm: checked slot by slot (slot 1 differs here), not only slot 0.
  with pytest.raises(ValueError, match='not paired'):
    evaluation.compare_agents([[a, other], [a, a]], ['x', 'y'], str(tmp_path / 'c'))
  rows, _ = evaluation.compare_agents([[a, other], [a, other]], ['x', 'y'], str(tmp_path / 'c'))
  assert rows[1]['seeds'] == [300, 301, 302, 303]
  # Passes merged on the same seeds; another seed set is refused.
  merged, _ = evaluation.combine([a, a], str(tmp_path / 'm'), 6)
  assert merged[0]['seeds'] == [300, 301]
  with pytest.raises(ValueError, match='not paired'):
    evaluation.combine([a, other], str(tmp_path / 'm'), 6)
  second_pass = file('s', [_row('transformer', [1, 2], 9, seeds=[302, 303])])  # no baseline
  with pytest.raises(ValueError, match='not paired'):
    evaluation.combine([a, second_pass], str(tmp_path / 'm'), 6)
  merged, _ = evaluation.combine([a, old], str(tmp_path / 'm'), 6)   # old file: not checked
  assert [r['seeds'] for r in merged] == [[300, 301], [300, 301]]
  # Pooled seed sets: seeds concatenated; sets sharing a seed are refused.
  pooled, _ = evaluation.pool([a, other], str(tmp_path / 'p'), 6)
  assert pooled[0]['seeds'] == [300, 301, 302, 303]
  overlap = file('v', [_row('baseline', [1, 2], 500, seeds=[301, 302])])
  with pytest.raises(ValueError, match='share episode seeds'):
    evaluation.pool([a, overlap], str(tmp_path / 'p'), 6)
  pooled, _ = evaluation.pool([a, file('o2', [_row('baseline', [5, 6], 500)]), other],
                              str(tmp_path / 'p'), 6)   # one set without seeds: none pooled
  assert pooled[0]['seeds'] is None and len(pooled[0]['returns']) == 6
  mixed = file('x', [_row('baseline', [1, 2], 500, seeds=[310, 311]),
                     _row('mlp', [1, 2], 9, seeds=[300, 301])])   # rows of one file disagree
  with pytest.raises(ValueError, match='not paired'):
    evaluation.pool([mixed, other], str(tmp_path / 'p'), 6)


def test_return_stats_hand_worked_population_std_and_strict_threshold():
  # [2, 4, 4, 4, 5, 5, 7, 9]: mean 40 / 8 = 5; squared deviations 9+1+1+1+0+0+4+16 = 32,
  # population std sqrt(32 / 8) = 2 (not the sample std sqrt(32 / 7) = 2.14); median
  # (4 + 5) / 2 = 4.5; q25 at position 0.25 * 7 = 1.75 -> 4, q75 at 5.25 -> 5 + 0.25 * 2 = 5.5.
  r = [2, 4, 4, 4, 5, 5, 7, 9]
  s = reporting.return_stats(r, fail_below=4.0)
  np.testing.assert_allclose([s['return_mean'], s['return_std'], s['return_median'],
                              s['return_q25'], s['return_q75']], [5, 2, 4.5, 4, 5.5])
  assert s['failed'] == 1                     # only 2 < 4: an episode AT the threshold is kept
  assert reporting.return_stats(r, fail_below=4.5)['failed'] == 4   # 2, 4, 4, 4
  assert np.isnan(reporting.return_stats(r)['failed'])             # no threshold: nan


def test_paired_bootstrap_ci_level_on_a_known_resampling_distribution():
  # returns [0, 0, 1] against a constant baseline [1, 1, 1]: a resample's ratio is k / 3, k the
  # number of draws of the single 1 among 3 draws, k ~ Binomial(3, 1/3):
  # P(k=0) = 8/27 = 29.6%, P(1) = 12/27, P(2) = 6/27, P(3) = 1/27 = 3.7%.
  # 95% CI = 2.5th / 97.5th percentiles: 0 (29.6% > 2.5% at k=0) and 1 (3.7% > 2.5% at k=3);
  # the 90% CI's 95th percentile falls below the top 5% -> k = 2 -> 2/3.
  # (2000 draws: ~74 at k=3, 3 sd from both 50 and 100.)
  p = reporting.paired_stats([0, 0, 1], [1, 1, 1])
  assert p['ratio'] == pytest.approx(1 / 3)
  assert p['diff_mean'] == pytest.approx(-2 / 3) and p['diff_median'] == -1   # -1, -1, 0
  assert (p['ratio_lo'], p['ratio_hi']) == (0.0, 1.0)
  p90 = reporting.paired_stats([0, 0, 1], [1, 1, 1], level=0.9)
  assert p90['ratio_lo'] == 0.0 and p90['ratio_hi'] == pytest.approx(2 / 3)


def test_clustered_bootstrap_also_resamples_episodes_within_a_cluster():
  # One cluster holding returns [0, 1] vs baseline [1, 1]: the cluster is always drawn, its two
  # episodes are drawn with replacement: ratios 0 (1/4), 0.5 (1/2), 1 (1/4) -> 95% CI [0, 1].
  # Keeping the drawn cluster's episodes as they are would always give 0.5.
  p = reporting.paired_stats([0, 1], [1, 1], groups=[7, 7])
  assert p['ratio'] == 0.5 and (p['ratio_lo'], p['ratio_hi']) == (0.0, 1.0)


def test_add_robust_stats_finds_the_baseline_row_wherever_it_is():
  # Baseline second: median of [20, 40] = 30 -> fail_below 15; spec [30, 10]: 10 < 15 fails;
  # ratio (30 + 10) / (20 + 40) = 2/3, differences 10, -30 -> mean = median = -10.
  # A row with another episode count gets return stats but no paired stats.
  rows = [dict(mode='spec', returns=[30, 10]), dict(mode='baseline', returns=[20, 40]),
          dict(mode='mlp', returns=[1, 2, 3])]
  reporting.add_robust_stats(rows)
  assert [r['fail_below'] for r in rows] == [15.0] * 3
  assert [r['failed'] for r in rows] == [1, 0, 3]
  np.testing.assert_allclose([rows[0]['ratio'], rows[0]['diff_mean'], rows[0]['diff_median']],
                             [2 / 3, -10, -10])
  assert rows[1]['ratio'] == 1.0 and 'ratio' not in rows[2]
  # Another key names the reference (compare-style rows); none found: no threshold, no pairing.
  agents = [dict(agent='b', returns=[4, 4]), dict(agent='a', returns=[2, 6])]
  reporting.add_robust_stats(agents, baseline_key=('agent', 'a'))
  assert agents[0]['fail_below'] == 2.0 and agents[0]['ratio'] == 1.0   # 0.5 * median 4; 8/8
  alone = [dict(mode='spec', returns=[1, 2])]
  reporting.add_robust_stats(alone)
  assert alone[0]['fail_below'] is None and 'ratio' not in alone[0]


def test_tau_quantiles_with_ties_interpolation_and_non_finite_distances():
  # Distances [0, 0, 0, 1] (+ non-finite values, dropped): np.quantile puts level q at position
  # 3q of the sorted values, so tau(q) = 0 for q <= 2/3 and 3q - 2 above:
  # qs[66] = 0 (position 1.98), qs[67] = 0.01, qs[83] = 0.49, qs[84] = 0.52, qs[100] = 1.
  qs = reporting.mismatch_quantiles([0, 0, np.inf, 0, np.nan, 1, -np.inf])
  assert len(qs) == 101 and np.all(np.isfinite(qs))
  np.testing.assert_allclose([qs[0], qs[66], qs[67], qs[84], qs[100]], [0, 0, 0.01, 0.52, 1],
                             atol=1e-12)
  # tau = 0: the share AT or below 0 is the last tied level, 0.66 (not 0).
  assert reporting.quantile_of_tau(0.0, qs) == pytest.approx(0.66)
  # tau = 0.5 lies a third of the way from qs[83] = 0.49 to qs[84] = 0.52: 0.83 + 0.01 / 3 = 5/6.
  assert reporting.quantile_of_tau(0.5, qs) == pytest.approx(5 / 6)
  assert reporting.tau_from_quantile(5 / 6, qs) == pytest.approx(0.5)
  # The maximum itself accepts every step; below the minimum none.
  assert reporting.quantile_of_tau(1.0, qs) == 1.0 and reporting.quantile_of_tau(-0.1, qs) == 0.0
  with pytest.raises(ValueError, match='no finite'):
    reporting.mismatch_quantiles([np.nan, np.inf])
