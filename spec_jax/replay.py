"""Replay buffer as a JAX pytree, fed by one or many parallel environments.

Layout: ``E`` environment streams, each a ring of ``C`` records. Record t of a stream holds
(obs_t, action_t, reward_t, episode id): the action taken at obs_t and the reward it earned.
All streams write one record per environment step (one jitted ``add`` for the whole batch of
environments). A sample is a sub-trajectory of ``L = H + 1`` consecutive records of one stream
that lie inside one episode and do not cross the ring's write head:
``obs [L, B, O]``, ``action [L-1, B, A]``, ``reward [L-1, B]``.

Deliberate deviation from the official buffer: the observation reached by the last step of an
episode is not stored, so the final transition of each episode is never the last transition of
a sample (1 transition in 500 for DMC).
"""
import functools
from typing import NamedTuple

import chex
import flax
import jax
import jax.numpy as jnp


class Batch(NamedTuple):
  obs: jax.Array     # [L, B, O]
  action: jax.Array  # [L-1, B, A]
  reward: jax.Array  # [L-1, B]


@flax.struct.dataclass
class ReplayBuffer:
  obs: jax.Array       # [E, C, O]
  action: jax.Array    # [E, C, A]
  reward: jax.Array    # [E, C]
  episode: jax.Array   # [E, C] int32, -1 where empty
  pos: jax.Array       # [] int32: next write index (shared by all streams)
  count: jax.Array     # [] int32: records written per stream so far

  @property
  def num_envs(self) -> int:
    return self.obs.shape[0]

  @property
  def capacity(self) -> int:
    return self.obs.shape[1]

  def size(self) -> int:
    return int(self.num_envs * min(int(self.count), self.capacity))


def init(num_envs: int, capacity: int, obs_dim: int, action_dim: int) -> ReplayBuffer:
  """Empty buffer of ``num_envs`` streams x ``capacity`` records (total = num_envs*capacity)."""
  if num_envs < 1 or capacity < 2:
    raise ValueError(f'need num_envs >= 1 and capacity >= 2, got {num_envs}, {capacity}')
  return ReplayBuffer(obs=jnp.zeros((num_envs, capacity, obs_dim), jnp.float32),
                      action=jnp.zeros((num_envs, capacity, action_dim), jnp.float32),
                      reward=jnp.zeros((num_envs, capacity), jnp.float32),
                      episode=-jnp.ones((num_envs, capacity), jnp.int32),
                      pos=jnp.zeros((), jnp.int32), count=jnp.zeros((), jnp.int32))


@jax.jit
def add(buf: ReplayBuffer, obs: jax.Array, action: jax.Array, reward: jax.Array,
        episode: jax.Array) -> ReplayBuffer:
  """Writes one record per stream: obs [E, O], action [E, A], reward [E], episode [E] (int)."""
  E = buf.num_envs
  chex.assert_shape(obs, (E, buf.obs.shape[-1]))
  chex.assert_shape(action, (E, buf.action.shape[-1]))
  chex.assert_shape(reward, (E,))
  chex.assert_shape(episode, (E,))
  p = buf.pos
  return buf.replace(obs=buf.obs.at[:, p].set(obs), action=buf.action.at[:, p].set(action),
                     reward=buf.reward.at[:, p].set(reward),
                     episode=buf.episode.at[:, p].set(episode.astype(jnp.int32)),
                     pos=(p + 1) % buf.capacity, count=buf.count + 1)


def _valid_start(buf: ReplayBuffer, env_idx: jax.Array, start: jax.Array, length: int):
  """Whether records start..start+length-1 of stream env_idx form one in-episode window."""
  C = buf.capacity
  filled = jnp.minimum(buf.count, C)
  oldest = jnp.where(buf.count >= C, buf.pos, 0)
  age = (start - oldest) % C
  last = (start + length - 1) % C
  ep0, ep1 = buf.episode[env_idx, start], buf.episode[env_idx, last]
  return (age + length <= filled) & (ep0 >= 0) & (ep0 == ep1)


def _candidates(buf: ReplayBuffer, key: jax.Array, n: int):
  """``n`` stratified draws over the filled records of all streams: candidate i is uniform in
  the i-th of n equal strata of the flat range [0, E * filled), so candidates are sorted and
  distinct whenever the range holds at least n records. Returns env_idx [n], start [n],
  is_repeat [n] (the same record as the previous candidate)."""
  filled = jnp.maximum(jnp.minimum(buf.count, buf.capacity), 1)
  oldest = jnp.where(buf.count >= buf.capacity, buf.pos, 0)
  total = buf.num_envs * filled
  u = jax.random.uniform(key, (n,))
  flat = jnp.floor((jnp.arange(n) + u) * total / n).astype(jnp.int32)
  flat = jnp.clip(flat, 0, total - 1)
  is_repeat = jnp.concatenate([jnp.zeros((1,), bool), flat[1:] == flat[:-1]])
  return flat // filled, (oldest + flat % filled) % buf.capacity, is_repeat


@functools.partial(jax.jit, static_argnames=('batch_size', 'length', 'oversample'))
def sample(buf: ReplayBuffer, key: jax.Array, batch_size: int, length: int,
           oversample: int = 4) -> Batch:
  """Samples ``batch_size`` valid windows of ``length`` records, uniformly and WITHOUT
  duplicates: ``oversample * batch_size`` distinct stratified candidates are drawn over the
  filled region, those crossing an episode boundary or the write head are rejected, and
  ``batch_size`` of the valid ones are chosen without replacement (Gumbel top-k). Only when
  fewer valid candidates than ``batch_size`` exist (a nearly empty buffer) are valid windows
  drawn with replacement. Call only when ``can_sample`` is True.

  Returns: Batch with obs [L, B, O], action [L-1, B, A], reward [L-1, B].
  """
  cand_key, pick_key, repl_key = jax.random.split(key, 3)
  n = oversample * batch_size
  env_idx, start, is_repeat = _candidates(buf, cand_key, n)
  valid = _valid_start(buf, env_idx, start, length) & ~is_repeat
  gumbel = jax.random.gumbel(pick_key, (n,))
  _, top = jax.lax.top_k(jnp.where(valid, gumbel, -jnp.inf), batch_size)
  num_valid = valid.sum()
  probs = jnp.where(num_valid > 0, valid / jnp.maximum(num_valid, 1), 1.0 / n)
  with_repl = jax.random.choice(repl_key, n, (batch_size,), p=probs)
  pick = jnp.where(num_valid >= batch_size, top, with_repl)
  e, s = env_idx[pick], start[pick]
  idx = (s[None, :] + jnp.arange(length)[:, None]) % buf.capacity      # [L, B]
  return Batch(obs=buf.obs[e[None], idx], action=buf.action[e[None], idx[:-1]],
               reward=buf.reward[e[None], idx[:-1]])


def can_sample(buf: ReplayBuffer, length: int) -> bool:
  """True when at least one complete window of ``length`` records is stored."""
  starts = jnp.arange(buf.capacity)
  ok = jax.vmap(lambda e: _valid_start(buf, jnp.full_like(starts, e), starts, length))(
      jnp.arange(buf.num_envs))
  return bool(ok.any())


@functools.partial(jax.jit, donate_argnums=0)
def add_sequence(buf: ReplayBuffer, obs: jax.Array, action: jax.Array, reward: jax.Array,
                 episode: jax.Array) -> ReplayBuffer:
  """Writes T records per stream at once: obs [T, E, O], action [T, E, A], reward [T, E],
  episode [T, E] (int). The buffer argument is donated (updated in place where supported)."""
  T, E = obs.shape[:2]
  chex.assert_shape(obs, (T, buf.num_envs, buf.obs.shape[-1]))
  chex.assert_shape(action, (T, E, buf.action.shape[-1]))
  chex.assert_shape(reward, (T, E))
  chex.assert_shape(episode, (T, E))
  if T > buf.capacity:
    raise ValueError(f'cannot add {T} records to a ring of capacity {buf.capacity}')
  idx = (buf.pos + jnp.arange(T)) % buf.capacity
  swap = lambda x: jnp.swapaxes(x, 0, 1)
  return buf.replace(obs=buf.obs.at[:, idx].set(swap(obs)),
                     action=buf.action.at[:, idx].set(swap(action)),
                     reward=buf.reward.at[:, idx].set(swap(reward)),
                     episode=buf.episode.at[:, idx].set(swap(episode).astype(jnp.int32)),
                     pos=(buf.pos + T) % buf.capacity, count=buf.count + T)
