"""Speculative collection during training (issue 11.2), a first learning check: the CPU
cartpole-swingup agent (experiments/cartpole_cpu.py's model, planner and update settings) on
MuJoCo Playground's MJX cartpole with 16 batched environments, 10k agent steps (a third of the
shipped cartpole agent's 30k), collecting with a fresh plan every step (this config) or
speculatively with execution length 3 and no gate (`--config.collect_exec_len=3`). Same seed,
so both runs start from the same weights and random-phase data.

Declared before the runs (this docstring is committed first): both runs in parallel on the
2 cores, then each export evaluated replanning every step on FRESH dm_control-identical MJX
seeds 300..309 (experiments/evaluate_baseline.py, --config.seed=300), 10 paired episodes;
reported with each run's wall time, whatever it gives. ONE training seed per arm: a difference
in return is weak evidence either way.

  python launch/train.py --config experiments/cartpole_mjx_cpu.py --workdir runs/cp_mjx_plain
  python launch/train.py --config experiments/cartpole_mjx_cpu.py --config.collect_exec_len=3 \\
      --workdir runs/cp_mjx_spec3
  python launch/evaluate.py --config experiments/evaluate_baseline.py --config.seed=300 \\
      --export runs/cp_mjx_plain/export --workdir runs/cp_mjx_plain_eval   (and cp_mjx_spec3)

Replication, declared in session 13 while the first pair was still training (before any
evaluation of it): a second training seed per arm, `--config.seed=2` (workdirs
runs/cp_mjx_plain_s2 and runs/cp_mjx_spec3_s2), evaluated the same way on seeds 300..309 and
reported beside the first pair whatever it gives (if both runs finish within the session).

Continuation, declared in session 13 before any evaluation of the seed-2 pair: both seed-1
runs resumed to 30k agent steps (the shipped cartpole agent's budget) with the same commands
plus `--config.steps=30000 --config.wall_minutes=90` in the same workdirs (a resumed run keeps
its replay capacity, here the 10k transitions of the 10k-step run, so the continuation learns
from the latest 10k transitions: not the same as a fresh 30k run, the same for both arms);
each export evaluated again on seeds 300..309 (workdirs runs/cp_mjx_{plain,spec3}_30k_eval),
reported whatever it gives. Declared later in session 13, after the seed-2 pair's 10k
evaluation (plain failed all 10 episodes, spec3 did not) and before any 30k result: the seed-2
pair continued to 30k the same way once the seed-1 continuation is done (workdirs
runs/cp_mjx_{plain,spec3}_s2), reported if it finishes within the session.

Session 14, declared before the runs: session 13's runs/ (checkpoints, 10k exports, the 30k
runs in progress) were lost with its machine; only the committed 10k evaluations and metrics
survive. Both pairs are re-run from scratch with the same commands (10k, the export kept as
export_10k, then resumed to 30k as above), seed 1 first, seed 2 after; each 30k export evaluated
on seeds 300..309 and reported whatever it gives; if time allows the re-run 10k exports are
evaluated too, as a check that the 10k results reproduce.
Declared in session 14 after both 30k evaluations, with the time left for 10k only: a third
training seed pair, `--config.seed=3`, 10k agent steps (workdirs runs/cp_mjx_{plain,spec3}_s3),
evaluated on seeds 300..309 and reported beside the 10k table whatever it gives.
Session 15, declared before the runs and after only the 10k evaluation of the seed-3 pair: the
seed-3 pair (its 10k checkpoints survived) resumed to 30k exactly as the seed-1 and seed-2
pairs were (same flags plus `--config.seed=3`), each 30k export evaluated on seeds 300..309
(workdirs runs/cp_mjx_{plain,spec3}_s3_30k_eval) and reported beside the 30k table, pooled
over the three seeds, whatever it gives.
Session 16, declared before the runs and after all results above: two more training-seed
pairs, `--config.seed=4` then `--config.seed=5` (workdirs runs/cp_mjx_{plain,spec3}_s{4,5}),
each exactly as seed 3: 10k (export kept as export_10k, evaluated on seeds 300..309), then
resumed to 30k with `--config.steps=30000 --config.wall_minutes=90` and evaluated again on
seeds 300..309; both arms of a pair side by side on the two cores. Reported beside the
10k / 30k tables and pooled over all seeds that reach 30k within the session, whatever it
gives (seed 5 only if it finishes).
"""
from spec_jax import builders


def get_config():
  base = builders.config_module(__file__, 'dmc_cpu.py')
  return base.variant(task='cartpole-swingup', backend='mjx', impl='jax', num_envs=16,
                      chunk_steps=25, steps=10_000, eval_every=0, checkpoint_every=2_000,
                      wall_minutes=45.0)
