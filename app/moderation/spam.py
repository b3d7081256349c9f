"""Anti-spam: per-user send rates and flood detection.

All state is in this process's memory, keyed by (app, user), so each node counts only
the sends it handles; the Redis work of issue 6 makes it shared. The clock is
injected: tests move it by hand instead of sleeping.

Two floods are watched for, within a sliding window:

* *same text*: nearly the same text sent to many different conversations. Texts are
  compared by the Jaccard similarity of their character 3-grams, on folded text, so
  a changed number or an emoji added does not make a spam run look new.
* *strangers*: a new user opening many conversations that had no message yet.

A flood brings a penalty for a while: ``slow`` (one send per slow interval),
``block`` (no sends), or ``review`` (sends delivered and flagged).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Key = tuple[int, str]  # (app id, user MD5 ID)
FloodAction = Literal["slow", "block", "review"]
FloodReason = Literal["same_text", "strangers"]

SHINGLE = 3
# Only the start of a long text is compared: spam runs repeat from the first line on,
# and it bounds the cost of a comparison.
COMPARED_CHARS = 256
# Sends remembered per user for flood detection. Settings cap their thresholds at it.
RECENT_MAX = 64
# The longest flood window an app may set; sends older than it are never looked at.
WINDOW_MAX_SECONDS = 86400.0
# Every this many calls, state that has gone idle is dropped.
SWEEP_EVERY = 4096


@dataclass(frozen=True, slots=True)
class SpamLimits:
    rate_per_second: float
    burst: int
    window_seconds: float
    same_text_conversations: int  # 0: off
    similarity: float
    strangers: int  # 0: off
    new_user_seconds: float
    action: FloodAction
    penalty_seconds: float
    slow_interval_seconds: float


@dataclass(slots=True)
class TokenBucket:
    """``burst`` tokens at most, ``rate`` more each second; a send takes one."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    def take(self, now: float) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there will be."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    def idle(self, now: float) -> bool:
        """Full again: forgetting it changes nothing."""
        return self.tokens + (now - self.stamp) * self.rate >= self.burst


@dataclass(frozen=True, slots=True)
class Penalty:
    action: FloodAction
    reason: FloodReason
    until: float


@dataclass(frozen=True, slots=True)
class _Sent:
    at: float
    conversation_id: str
    grams: frozenset[str]


def shingles(text: str) -> frozenset[str]:
    text = text[:COMPARED_CHARS]
    if len(text) <= SHINGLE:
        return frozenset((text,))
    return frozenset(text[i : i + SHINGLE] for i in range(len(text) - SHINGLE + 1))


def similar(a: frozenset[str], b: frozenset[str], threshold: float) -> bool:
    """Jaccard(a, b) >= threshold, skipping the intersection when sizes rule it out."""
    small, large = sorted((len(a), len(b)))
    if small < threshold * large:
        return False
    common = len(a & b)
    return common >= threshold * (len(a) + len(b) - common)


class SpamGuard:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[Key, TokenBucket] = {}
        self._penalties: dict[Key, Penalty] = {}
        self._sent: dict[Key, deque[_Sent]] = {}
        self._opened: dict[Key, deque[tuple[float, str]]] = {}
        self._calls = 0

    def penalty(self, key: Key) -> Penalty | None:
        """The user's penalty, if one is running."""
        found = self._penalties.get(key)
        if found is not None and found.until <= self._clock():
            del self._penalties[key]
            return None
        return found

    def wait(self, key: Key, limits: SpamLimits) -> float:
        """Take one send from the user's bucket: 0.0 to go on, else seconds to wait.
        Under a slow penalty the bucket holds one send per slow interval."""
        now = self._clock()
        self._tick(now)
        slow = (penalty := self.penalty(key)) is not None and penalty.action == "slow"
        rate = 1 / limits.slow_interval_seconds if slow else limits.rate_per_second
        burst = 1 if slow else limits.burst
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, burst, burst, now)
        elif (bucket.rate, bucket.burst) != (rate, burst):
            bucket.rate, bucket.burst = rate, burst
            bucket.tokens = min(bucket.tokens, burst)
        return bucket.take(now)

    def same_text(self, key: Key, conversation_id: str, text: str, limits: SpamLimits) -> int:
        """Record a send; return how many conversations got nearly this text in the window."""
        now = self._clock()
        sent = self._sent.setdefault(key, deque(maxlen=RECENT_MAX))
        while sent and sent[0].at <= now - limits.window_seconds:
            sent.popleft()
        grams = shingles(text)
        reached = {conversation_id}
        reached.update(
            s.conversation_id for s in sent
            if s.conversation_id not in reached and similar(grams, s.grams, limits.similarity)
        )
        sent.append(_Sent(now, conversation_id, grams))
        return len(reached)

    def opened(self, key: Key, conversation_id: str, limits: SpamLimits) -> int:
        """Record a first message into a conversation; return how many the user opened
        in the window."""
        now = self._clock()
        opened = self._opened.setdefault(key, deque(maxlen=RECENT_MAX))
        while opened and opened[0][0] <= now - limits.window_seconds:
            opened.popleft()
        if all(c != conversation_id for _, c in opened):
            opened.append((now, conversation_id))
        return len(opened)

    def punish(self, key: Key, reason: FloodReason, limits: SpamLimits) -> Penalty:
        now = self._clock()
        penalty = Penalty(limits.action, reason, now + limits.penalty_seconds)
        self._penalties[key] = penalty
        if penalty.action == "slow":
            # Empty, so that the next send waits a whole interval.
            self._buckets[key] = TokenBucket(1 / limits.slow_interval_seconds, 1, 0.0, now)
        return penalty

    def retry_after(self, penalty: Penalty) -> float:
        return max(0.0, penalty.until - self._clock())

    def _tick(self, now: float) -> None:
        self._calls += 1
        if self._calls % SWEEP_EVERY == 0:
            self.sweep(now)

    def sweep(self, now: float) -> None:
        """Forget full buckets, ended penalties and sends older than any window."""
        for key in [k for k, b in self._buckets.items() if b.idle(now)]:
            del self._buckets[key]
        for key in [k for k, p in self._penalties.items() if p.until <= now]:
            del self._penalties[key]
        horizon = now - WINDOW_MAX_SECONDS
        for table in (self._sent, self._opened):
            for key in [k for k, q in table.items() if not q or _last_at(q[-1]) < horizon]:
                del table[key]

    def __len__(self) -> int:
        """How many users this guard holds state for (for tests and metrics)."""
        return len(set(self._buckets) | set(self._penalties) | set(self._sent)
                   | set(self._opened))


def _last_at(item: _Sent | tuple[float, str]) -> float:
    return item.at if isinstance(item, _Sent) else item[0]
