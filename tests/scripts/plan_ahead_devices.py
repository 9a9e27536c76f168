"""Run by tests/test_plan_ahead_late.py in a subprocess with 3 forced host devices (step,
plan-ahead, rescue): every plan made ahead must reach the step on the step device, the timed
episodes must compile no new step variant, and the actions must equal the one-device run's.
Prints JSON."""
import json
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import jax  # noqa: E402
import numpy as np  # noqa: E402
from spec_jax import evaluation, speculation as sp  # noqa: E402
import test_plan_ahead_late as late  # noqa: E402
import toy  # noqa: E402


def main():
  seen, real_step = [], sp.step

  def step(ex_, params, state, obs, key, tau, t0, ready, task=None):
    if bool(ready.valid):
      seen.append(sorted({d.id for leaf in jax.tree_util.tree_leaves(ready)
                          for d in leaf.devices()}))
    return real_step(ex_, params, state, obs, key, tau, t0, ready, task=task)

  class Env(toy.FakeEnv):
    def reset(self, seed=None):
      self.at_reset = real_step._cache_size()     # after the warm-up, before the episode
      return super().reset(seed)

  sp.step = step
  out = {}
  for tau in (1e9, 0.0):     # every ready plan adopted / every step deferred (rescue plans)
    ex, xp = late._mlp_agent(on_reject='defer')
    env = Env(late.OBS, 1)
    row = evaluation.evaluate_mode(ex, xp, env, tau, 1, jax.random.PRNGKey(0),
                                   runtime=evaluation.Runtime(plan_ahead=True, ahead_lead=1))
    out[str(tau)] = dict(actions=np.stack(env.actions).tolist(), adopted=row['adopted'],
                         deferred=row['deferred'], at_reset=env.at_reset,
                         after=real_step._cache_size())
  out.update(n=len(jax.local_devices()), seen=seen)
  print(json.dumps(out))


if __name__ == '__main__':
  main()
