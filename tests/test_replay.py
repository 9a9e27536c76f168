"""Replay buffer: windows stay inside episodes and behind the write head; many streams."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spec_jax import replay


def _fill(buf, steps, ep_len, num_envs=1, offset=0):
  for t in range(steps):
    i = t + offset
    obs = jnp.stack([jnp.full((2,), 1000.0 * e + i) for e in range(num_envs)])
    buf = replay.add(buf, obs, jnp.full((num_envs, 1), float(i)), jnp.full((num_envs,), float(i)),
                     jnp.full((num_envs,), i // ep_len))
  return buf


def test_sample_shapes_and_contiguity():
  buf = _fill(replay.init(1, 64, 2, 1), 40, ep_len=10)
  b = replay.sample(buf, jax.random.PRNGKey(0), 32, 4)
  assert b.obs.shape == (4, 32, 2) and b.action.shape == (3, 32, 1) and b.reward.shape == (3, 32)
  t = np.asarray(b.obs[:, :, 0])
  np.testing.assert_array_equal(np.diff(t, axis=0), 1.0)        # consecutive records
  np.testing.assert_array_equal(t[0] // 10, t[-1] // 10)         # same episode
  np.testing.assert_array_equal(b.action[:, :, 0], b.obs[:-1, :, 0])  # action taken at obs_t
  assert t.max() <= 39


def test_ring_wraps_and_never_crosses_write_head():
  buf = _fill(replay.init(1, 16, 2, 1), 37, ep_len=100)  # one long episode, ring wrapped twice
  assert int(buf.count) == 37 and buf.size() == 16
  b = replay.sample(buf, jax.random.PRNGKey(1), 256, 4)
  t = np.asarray(b.obs[:, :, 0])
  assert t.min() >= 37 - 16                                       # only the newest 16 records
  np.testing.assert_array_equal(np.diff(t, axis=0), 1.0)


def test_many_streams_do_not_mix():
  buf = _fill(replay.init(3, 32, 2, 1), 20, ep_len=7, num_envs=3)
  b = replay.sample(buf, jax.random.PRNGKey(2), 128, 3)
  env = np.asarray(b.obs[:, :, 0]) // 1000
  assert (env == env[0]).all()
  assert set(np.unique(env[0])) == {0, 1, 2}


def test_can_sample_and_bad_args():
  buf = replay.init(1, 8, 2, 1)
  assert not replay.can_sample(buf, 4)
  buf = _fill(buf, 3, ep_len=10)
  assert not replay.can_sample(buf, 4)
  buf = _fill(buf, 1, ep_len=10, offset=3)
  assert replay.can_sample(buf, 4)
  with pytest.raises(ValueError):
    replay.init(0, 8, 2, 1)
  with pytest.raises(AssertionError):
    replay.add(buf, jnp.zeros((2, 2)), jnp.zeros((2, 1)), jnp.zeros(2), jnp.zeros(2, jnp.int32))


def test_add_sequence_equals_repeated_add():
  a = _fill(replay.init(2, 8, 2, 1), 11, ep_len=4, num_envs=2)
  T = 11
  obs = jnp.stack([jnp.stack([jnp.full((2,), 1000.0 * e + i) for e in range(2)]) for i in range(T)])
  act = jnp.broadcast_to(jnp.arange(T, dtype=jnp.float32)[:, None, None], (T, 2, 1))
  rew = jnp.broadcast_to(jnp.arange(T, dtype=jnp.float32)[:, None], (T, 2))
  ep = jnp.broadcast_to((jnp.arange(T) // 4)[:, None], (T, 2))
  b = replay.add_sequence(replay.init(2, 16, 2, 1), obs[:5], act[:5], rew[:5], ep[:5])
  b = replay.init(2, 8, 2, 1)
  b = replay.add_sequence(b, obs[:5], act[:5], rew[:5], ep[:5])
  b = replay.add_sequence(b, obs[5:], act[5:], rew[5:], ep[5:])
  for name in ('obs', 'action', 'reward', 'episode', 'pos', 'count'):
    np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
  with pytest.raises(ValueError, match='capacity'):
    replay.add_sequence(b, jnp.zeros((9, 2, 2)), jnp.zeros((9, 2, 1)), jnp.zeros((9, 2)),
                        jnp.zeros((9, 2), jnp.int32))


def _window_ids(batch):
  return np.asarray(batch.obs[0, :, 0])  # obs value = 1000 * env + record index: unique per window


def test_no_duplicate_windows_in_a_batch():
  # 20k records in 40 episodes of 500: the old sampler put ~30 duplicates in every batch of 256
  # (uniform independent draws would give 256*255/2/N ~ 1.6); without replacement there are none.
  buf = replay.add_sequence(
      replay.init(1, 20_000, 2, 1), jnp.stack([jnp.arange(20_000.0)] * 2, -1)[:, None],
      jnp.zeros((20_000, 1, 1)), jnp.zeros((20_000, 1)), (jnp.arange(20_000) // 500)[:, None])
  dups = [256 - len(np.unique(_window_ids(replay.sample(buf, jax.random.PRNGKey(i), 256, 4))))
          for i in range(20)]
  assert max(dups) == 0, dups


def test_sampling_is_uniform_over_valid_windows():
  # 2 streams x 30 records, episodes of 10: valid windows of length 4 start at offsets 0..6 of
  # each episode (7 x 3 x 2 = 42 windows). Each must be drawn with frequency ~ B / 42.
  buf = _fill(replay.init(2, 30, 2, 1), 30, ep_len=10, num_envs=2)
  counts = {}
  for i in range(400):
    for w in _window_ids(replay.sample(buf, jax.random.PRNGKey(i), 16, 4)):
      counts[w] = counts.get(w, 0) + 1
  assert len(counts) == 42 and all(int(w) % 1000 % 10 <= 6 for w in counts)
  freq = np.array(list(counts.values())) / (400 * 16)
  np.testing.assert_allclose(freq, 1 / 42, rtol=0.25)


def test_small_buffer_falls_back_to_replacement():
  buf = _fill(replay.init(1, 16, 2, 1), 12, ep_len=100)   # 9 valid windows of length 4 < 32
  b = replay.sample(buf, jax.random.PRNGKey(3), 32, 4)
  t = np.asarray(b.obs[:, :, 0])
  np.testing.assert_array_equal(np.diff(t, axis=0), 1.0)
  assert t.max() <= 11 and len(np.unique(t[0])) == 9


def test_sampled_action_and_reward_belong_to_the_window_record_of_their_stream():
  # Record t of stream e: obs 100 e + t, action 100 e + t + 0.25, reward 100 e + t + 0.5 (the
  # action taken at obs_t and the reward it earned), so obs[:-1] + 0.25 / + 0.5 must reappear as
  # action / reward of the same column: another record (t + 1) or stream shows up as an offset.
  T, E = 12, 2
  val = jnp.arange(T, dtype=jnp.float32)[:, None] + 100.0 * jnp.arange(E)[None]   # [T, E]
  buf = replay.add_sequence(replay.init(E, 16, 2, 1), jnp.stack([val, val], -1),
                            (val + 0.25)[..., None], val + 0.5, jnp.zeros((T, E), jnp.int32))
  b = replay.sample(buf, jax.random.PRNGKey(4), 8, 3)
  o = np.asarray(b.obs[:-1, :, 0])
  np.testing.assert_array_equal(b.action[:, :, 0], o + 0.25)
  np.testing.assert_array_equal(b.reward, o + 0.5)
  assert set(np.unique(o[0] // 100)) == {0, 1}


def test_no_duplicate_windows_when_candidates_outnumber_records():
  # 16 records of one episode in a ring of 16, windows of 2: starts 0..14 are valid (15 crosses
  # the write head), 15 windows >= 8, so a batch of 8 holds 8 distinct windows, although the 32
  # stratified candidates hit every record twice.
  buf = _fill(replay.init(1, 16, 2, 1), 16, ep_len=100)
  for i in range(20):
    t = np.asarray(replay.sample(buf, jax.random.PRNGKey(i), 8, 2).obs[:, :, 0])
    assert len(np.unique(t[0])) == 8 and t[0].max() <= 14, t[0]


def test_few_valid_windows_are_drawn_with_replacement_inside_their_episode():
  # 12 records: episodes 0..7 of one record each, then episode 8 = records 8..11. Windows of 3:
  # only starts 8 and 9 are valid (2 < batch 4), so every window is 8..10 or 9..11.
  buf = replay.add_sequence(replay.init(1, 16, 2, 1),
                            jnp.stack([jnp.arange(12.0)] * 2, -1)[:, None], jnp.zeros((12, 1, 1)),
                            jnp.zeros((12, 1)), jnp.minimum(jnp.arange(12), 8)[:, None])
  for i in range(5):
    t = np.asarray(replay.sample(buf, jax.random.PRNGKey(i), 4, 3).obs[:, :, 0])
    assert set(t[0]) <= {8.0, 9.0}, t[0]
    np.testing.assert_array_equal(np.diff(t, axis=0), 1.0)


def test_wrapped_ring_is_sampled_uniformly_when_count_is_not_a_multiple_of_capacity():
  # Ring of 10 after 15 records of one episode: it holds records 5..14 (write head at slot 5);
  # windows of 2 start at records 5..13: 9 windows. A batch of 4 holds 4 distinct windows of
  # the 9, each drawn 4/9 of the time: 2000 batches -> 8000/9 = 889 draws each (sd ~22; the
  # stratified candidates add a few % of non-uniformity, hence rtol 0.15).
  buf = _fill(replay.init(1, 10, 2, 1), 15, ep_len=100)
  draw = jax.jit(jax.vmap(lambda k: replay.sample(buf, k, 4, 2).obs[0, :, 0]))
  t0 = np.asarray(draw(jax.random.split(jax.random.PRNGKey(5), 2000))).astype(int)   # [2000, 4]
  assert (np.sort(t0, axis=1)[:, 1:] != np.sort(t0, axis=1)[:, :-1]).all()   # no duplicates
  counts = np.bincount(t0.ravel(), minlength=15)
  assert counts[:5].sum() == 0 and counts[14] == 0
  np.testing.assert_allclose(counts[5:14], 8000 / 9, rtol=0.15)
