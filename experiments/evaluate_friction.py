"""Issue 12.3's friction shift on walker-run: every geom friction x0.5 (held out: the robust
distillation, experiments/distill_robust.py, randomised friction and mass in 0.7..1.3 only; the
nominal correctors saw nominal physics). Baseline (horizon-6 planner, replan every step), the
nominal 12-episode MLP at tau 0.5 and H = 3 as distilled and with online adaptation
(spec_jax/online.py), seeds 100..109, run on the first shipped walker-run export
(runs/walker_run/distill/export). The robust and the larger nominal MLP on the same seeds and
keys: experiments/evaluate_friction_b.py on their exports, merged with
launch/combine_evaluations.py (rows relabelled per export)."""
from spec_jax import builders


def get_config():
  c = builders.config_module(__file__, 'evaluate_suite_h6.py').get_config()
  c.model_scale = dict(friction=0.5)
  c.blocks = (dict(modes=('mlp',), exec_lens=(3,), taus=(0.5,)),
              dict(modes=('mlp',), exec_lens=(3,), taus=(0.5,), online=True))
  return c
