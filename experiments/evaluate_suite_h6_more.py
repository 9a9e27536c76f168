"""Third evaluation pass of the task suite (cheetah-run, where open-loop speculation loses
return): the Transformer corrector's tau sweep at H = 3 and its execution lengths 2, 4, 5, 6,
then open-loop speculation at 2, 4, 5, on the same seeds (100..109) and keys as
experiments/evaluate_suite_h6.py. Run on the SHIPPED (float16) agent, so its own horizon-6
baseline is evaluated first (``--config.baseline False`` pairs with an earlier pass of the same
export instead, through ``launch/combine_evaluations.py``)."""
from spec_jax import builders

INF = float('inf')


def get_config():
  base = builders.config_module(__file__, 'evaluate_suite_h6.py')
  c = base.get_config()
  c.baseline = True
  c.blocks = (
      dict(modes=('transformer',), exec_lens=(3,), taus=(0.2, 1.0), tau_quantiles=(0.9,)),
      dict(modes=('transformer',), exec_lens=(2, 4), taus=(0.5,), tau_quantiles=()),
      dict(modes=('transformer',), exec_lens=(3,), taus=(0.05,), tau_quantiles=()),
      dict(modes=('spec',), exec_lens=(2, 4), taus=(INF,), tau_quantiles=()),
      dict(modes=('transformer',), exec_lens=(5, 6), taus=(0.5,), tau_quantiles=()),
      dict(modes=('spec',), exec_lens=(5,), taus=(INF,), tau_quantiles=()),
  )
  return c
