"""Hand-worked checks of spec_jax/speculation.py found missing by a mutation check (one small
wrong change at a time; these tests catch the ones the other speculation tests let through):
the gate at d == tau, the mismatch at t0, which replans count as fallbacks, counters on a
non-finite step or plan (queues and warm start kept), the corrector's inputs (the history token
pushed this step, newest last, reset at t0), and the compact step's capacity choice.

All on the toy model of tests/toy.py (latent = observation, z' = z + 0.5 a) with one tiny planner
config; three small executors (spec, MLP corrector, NaN policy), each compiled once."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import config
from spec_jax import correctors
from spec_jax import speculation as sp
import toy

PC = config.PlannerConfig(horizon=3, iterations=2, num_samples=16, num_elites=2, num_pi_trajs=2)
EX = sp.Executor(toy.ToyModel(), PC, sp.SpecConfig(mode='spec', exec_len=2))
XP = sp.ExecParams(toy.TOY_PARAMS)
OBS0 = np.array([0.1, 0.2, -0.3], np.float32)


def _step(state, obs, tau, t0, key=0, ex=EX, xp=XP):
  return sp.step(ex, xp, state, jnp.asarray(obs, jnp.float32), jax.random.PRNGKey(key), tau, t0)


@pytest.fixture(scope='module')
def planned():
  """The state after the t0 plan at OBS0 (EX: exec_len 2, horizon 3), and that step's info."""
  _, state, info = _step(sp.init_state(EX), OBS0, 1e9, True)
  return state, info


def test_t0_distance_is_zero_and_an_exact_prediction_passes_the_gate_at_tau_zero(planned):
  state, info0 = planned
  # t0: the fresh state's z_hat is latent_queue[H] = 0, so ||z_real - z_hat|| = ||OBS0|| = 0.374;
  # the documented d at t0 is 0 (no prediction to verify).
  np.testing.assert_array_equal(info0.z_hat, np.zeros(3))
  assert float(info0.d) == 0.0
  # Next step: observe exactly the predicted latent latent_queue[1] = OBS0 + 0.5 a_0 (the same
  # float32 values), so d = 0 exactly. The gate rejects when d > tau: at tau = 0 it accepts
  # (0 > 0 is false) and the queued action queue[1] is executed.
  q = np.asarray(state.action_queue)
  np.testing.assert_allclose(state.latent_queue[1], OBS0 + 0.5 * q[0], atol=1e-6)
  a, s1, info = _step(state, state.latent_queue[1], 0.0, False, key=1)
  assert float(info.d) == 0.0 and float(info.score) == 0.0
  assert not bool(info.replanned) and not bool(info.fallback)
  np.testing.assert_array_equal(a, q[1])
  assert (int(s1.index), int(s1.corrections), int(s1.planner_calls)) == (2, 1, 1)


def test_only_mid_queue_rejections_count_as_fallbacks(planned):
  # exec_len 2. Trace (tau 0.1; displacement from the hand-computed prediction):
  #   t1: queue index 1, z_hat = OBS0 + 0.5 q0, displaced by 0.5 -> reject mid-queue: FALLBACK
  #   t2: index 1 of the new plan (made at obs1), exact prediction -> correct (index 2)
  #   t3: queue exhausted (index 2 = exec_len) AND displaced by 0.5 > tau -> a scheduled
  #       replan, not a fallback (there was no queue left to continue).
  # Counters: planner_calls 3 (t0, t1, t3), corrections 1, fallbacks 1.
  state, _ = planned
  q0 = np.asarray(state.action_queue)
  obs1 = OBS0 + 0.5 * q0[0] + np.array([0.0, 0.3, 0.4], np.float32)       # d = 0.5
  _, s1, i1 = _step(state, obs1, 0.1, False, key=1)
  assert bool(i1.replanned) and bool(i1.fallback)
  np.testing.assert_allclose(i1.d, 0.5, rtol=1e-5)
  q1 = np.asarray(s1.action_queue)
  obs2 = obs1 + 0.5 * q1[0]
  np.testing.assert_allclose(s1.latent_queue[1], obs2, atol=1e-6)
  _, s2, i2 = _step(s1, s1.latent_queue[1], 0.1, False, key=2)
  assert not bool(i2.replanned) and int(s2.index) == 2
  obs3 = np.asarray(s1.latent_queue[2]) + np.array([0.3, 0.0, 0.4], np.float32)   # d = 0.5
  _, s3, i3 = _step(s2, obs3, 0.1, False, key=3)
  np.testing.assert_allclose(i3.d, 0.5, rtol=1e-5)
  assert bool(i3.replanned) and not bool(i3.fallback)
  assert (int(s3.planner_calls), int(s3.corrections), int(s3.fallbacks)) == (3, 1, 1)
  assert int(s3.steps) == 4


def test_a_nonfinite_step_is_counted_once_and_not_as_a_correction(planned):
  # t0 plan, t1 NaN observation mid-queue (SAFE_ACTION, no planner call, no correction), t2 a
  # finite observation replans. Counters after t2: planner_calls 2, corrections 0, nonfinite 1,
  # fallbacks 0, steps 3; the t1 step leaves index = max(1, H = 3) = 3 (forces the replan).
  state, _ = planned
  a1, s1, i1 = _step(state, np.array([0.1, np.nan, 0.0]), 1e9, False, key=1)
  np.testing.assert_array_equal(a1, np.zeros(3))
  assert bool(i1.nonfinite) and not bool(i1.replanned) and int(s1.index) == 3
  assert (int(s1.corrections), int(s1.nonfinite), int(s1.planner_calls)) == (0, 1, 1)
  _, s2, i2 = _step(s1, OBS0, 1e9, False, key=2)
  assert bool(i2.replanned) and not bool(i2.fallback)
  assert (int(s2.planner_calls), int(s2.corrections), int(s2.nonfinite), int(s2.fallbacks),
          int(s2.steps)) == (2, 0, 1, 0, 3)


class _NanPolicyToy(toy.ToyModel):
  """The toy model with a policy prior that outputs NaN: its trajectories' values become 0
  (nan_to_num) and beat every sampled one (negative rewards), so both elites, the MPPI mean and
  the executed action are NaN."""

  def pi_with_noise(self, params, z, eps):
    return jnp.full_like(eps, jnp.nan), None


def test_a_nonfinite_plan_leaves_queues_and_warm_start_as_they_were():
  # t0 plan is NaN -> SAFE_ACTION; the step keeps the fresh state's zero queues and zero warm
  # start (a NaN warm start would poison every later plan) and sets index = H = 3.
  ex = sp.Executor(_NanPolicyToy(), PC, sp.SpecConfig(mode='spec', exec_len=2))
  a, state, info = _step(sp.init_state(ex), OBS0, 1e9, True, ex=ex)
  assert bool(info.replanned) and bool(info.nonfinite)
  np.testing.assert_array_equal(a, np.zeros(3))
  np.testing.assert_array_equal(state.planner.prev_mean, np.zeros((3, 3)))
  np.testing.assert_array_equal(state.action_queue, np.zeros((3, 3)))
  np.testing.assert_array_equal(state.latent_queue, np.zeros((4, 3)))
  assert (int(state.index), int(state.nonfinite), int(state.corrections)) == (3, 1, 0)


# ---- the corrector's inputs -----------------------------------------------------------------
COR = correctors.Corrector(correctors.CorrectorConfig(kind='mlp', hidden=8, history=2), 3, 3)
EX_C = sp.Executor(toy.ToyModel(), PC, sp.SpecConfig(mode='mlp', exec_len=3, history=2), COR)


@pytest.fixture(scope='module')
def cparams():
  """MLP corrector parameters: every leaf 0.5 x N(0, 1) (numpy draws in the shapes of
  COR.init, no compiled program), so the correction is far from zero and depends on its
  inputs."""
  rng = np.random.default_rng(3)
  shapes = jax.eval_shape(COR.init, jax.random.PRNGKey(3))
  return jax.tree_util.tree_map(
      lambda s: jnp.asarray(0.5 * rng.standard_normal(s.shape), jnp.float32), shapes)


def test_corrector_gets_this_steps_token_newest_last_and_history_resets_at_t0(cparams):
  xp = sp.ExecParams(toy.TOY_PARAMS, cparams)
  # t0: token [z_real, z_hat, z_real - z_hat, a_spec] with the fresh state's z_hat = 0 and
  # a_spec = 0 (index H: nothing queued) -> [OBS0, 0, OBS0, 0]; valid [False, True].
  _, s0, _ = _step(sp.init_state(EX_C), OBS0, 1e9, True, ex=EX_C, xp=xp)
  tok0 = np.concatenate([OBS0, np.zeros(3), OBS0, np.zeros(3)])
  np.testing.assert_allclose(s0.history[-1], tok0, atol=1e-6)
  np.testing.assert_array_equal(s0.history_valid, [False, True])
  # t1: observe the prediction OBS0 + 0.5 q0 displaced by delta; the token pushed this step is
  # [obs1, zq1, delta, q1] (newest last, after tok0) and the emitted action is
  # clip(q1 + corrector(history [tok0, tok1], valid [T, T], q1), -1, 1).
  q = np.asarray(s0.action_queue)
  zq1 = OBS0 + 0.5 * q[0]
  delta = np.array([0.2, -0.1, 0.05], np.float32)
  obs1 = zq1 + delta
  a1, s1, i1 = _step(s0, obs1, 1e9, False, key=1, ex=EX_C, xp=xp)
  assert not bool(i1.replanned) and int(i1.k) == 1
  tok1 = np.concatenate([obs1, zq1, delta, q[1]])
  want_hist = np.stack([tok0, tok1]).astype(np.float32)
  np.testing.assert_allclose(s1.history, want_hist, atol=1e-6)
  np.testing.assert_array_equal(s1.history_valid, [True, True])
  delta_a = jax.jit(COR.apply)(cparams, jnp.asarray(want_hist), jnp.ones(2, bool),
                               jnp.asarray(q[1]))
  want = np.clip(q[1] + np.asarray(delta_a), -1, 1)
  np.testing.assert_allclose(a1, want, atol=1e-5)
  assert not np.allclose(a1, q[1], atol=1e-3)          # the correction is not negligible
  # A new episode (t0) on the carried state: only the t0 token is valid again.
  _, s2, _ = _step(s1, OBS0, 1e9, True, key=2, ex=EX_C, xp=xp)
  np.testing.assert_array_equal(s2.history_valid, [False, True])
  np.testing.assert_allclose(s2.history[0], tok1, atol=1e-6)


# ---- compact batched step -------------------------------------------------------------------
def test_capacity_index_picks_the_smallest_capacity_that_fits():
  # capacities(64) = (1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64): n replanning environments need
  # the first capacity >= n; a capacity equal to n fits (no padding rows).
  caps = sp.capacities(64)
  got = [int(sp.capacity_index(jnp.asarray(n), caps)) for n in (1, 2, 3, 4, 8, 9, 16, 17, 56, 64)]
  assert got == [0, 1, 2, 2, 3, 4, 4, 5, 9, 10]
  assert [caps[i] for i in got] == [sp.executed_plans(n, 64) for n in
                                    (1, 2, 3, 4, 8, 9, 16, 17, 56, 64)]
