"""bfloat16 matrix products in the planner (issue 11.5, PlannerConfig.matmul_dtype): does
planning with them cost return? Replan every step (the exported planner), the same episodes
with float32 products (`--config.base_planner.matmul_dtype=float32`) and with bfloat16 ones
(this config's default), paired by seed (launch/compare_agents.py).

Declared before any run (this docstring is committed first): the shipped walker-run,
cheetah-run and walker-walk agents, FRESH seeds 240..249 (never used by any evaluation of these
agents), 10 paired episodes per agent, in that order (walker-walk only if time allows), both
arms reported whatever they give:

  python launch/evaluate.py --config experiments/evaluate_bf16.py \\
      --config.base_planner.matmul_dtype=float32 --export agents/walker-run --workdir runs/bf16_wr_f32
  python launch/evaluate.py --config experiments/evaluate_bf16.py \\
      --export agents/walker-run --workdir runs/bf16_wr_bf16
  python launch/compare_agents.py --labels float32,bfloat16 \\
      --inputs runs/bf16_wr_f32/evaluation.csv,runs/bf16_wr_bf16/evaluation.csv \\
      --workdir results/issue11/bf16_planner/walker_run

Declared after the three pairs above (all three bfloat16 point estimates 3-4% lower, no CI
excluding 1) and before any further run: a replication on walker-run with 20 more paired
episodes, FRESH seeds 250..269 (`--config.seed=250 --config.episodes=20`, workdirs
runs/bf16_wr2_{f32,bf16}), compared alone and pooled with seeds 240..249
(results/issue11/bf16_planner/walker-run_rep, walker-run_pooled30), reported whatever it gives.
Declared after that replication (walker-run pooled 1.00 [0.97, 1.03]) and before any further
run: the same 20-episode replication on cheetah-run (seeds 250..269, workdirs
runs/bf16_cr2_{f32,bf16}; results/issue11/bf16_planner/cheetah-run_rep), if the session's time
allows, reported whatever it gives.
"""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_baseline.py').get_config()
  c.seed = 240
  c.base_planner.matmul_dtype = 'bfloat16'
  return c
