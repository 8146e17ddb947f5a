"""How customers are split into shards: one stable hash, stored with every event so that a shard's reader
filters inside the log instead of reading everyone's events and dropping most of them."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import NamedTuple

BROADCAST_CUSTOMER = "system"
ANONYMOUS_CUSTOMER = "anonymous"
"""The customer id of events no customer is known for (an auction for an unidentified user): no journey is kept."""
"""Events of this customer id (the daily tick, for example) belong to every shard."""


def stable_hash(key: str, salt: str = "") -> int:
    """A non-negative 63-bit hash of ``key``, the same in every process and every run (unlike ``hash()``);
    63 bits so that SQLite's signed integers hold it."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, person=salt.encode()[:16]).digest()
    return int.from_bytes(digest) >> 1


@lru_cache(maxsize=1 << 20)
def customer_hash(customer_id: str) -> int:
    """The shard hash of a customer, stored in the log's ``customer_hash`` column (cached: customers recur,
    and this runs once per appended event)."""
    return stable_hash(customer_id, "ame-shard")


def shard_of(key: str, shards: int) -> int:
    """The shard that owns ``key``: its stable hash mod ``shards``."""
    return customer_hash(key) % shards


class Shard(NamedTuple):
    """Shard ``index`` of ``count``: the customers whose hash mod ``count`` is ``index``, plus broadcast events."""

    index: int
    count: int

    def owns(self, customer_id: str) -> bool:
        return customer_id == BROADCAST_CUSTOMER or customer_hash(customer_id) % self.count == self.index
