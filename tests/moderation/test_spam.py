"""Anti-spam with a clock the test moves by hand: token buckets, near-duplicate floods,
new users opening conversations, and penalties."""

from __future__ import annotations

import pytest

from app.moderation.spam import SpamGuard, SpamLimits, TokenBucket, shingles, similar

KEY = (1, "a" * 32)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limits(**changes: object) -> SpamLimits:
    base: dict[str, object] = dict(
        rate_per_second=2.0, burst=3, window_seconds=60.0, same_text_conversations=3,
        similarity=0.8, strangers=3, new_user_seconds=86400.0, action="slow",
        penalty_seconds=300.0, slow_interval_seconds=10.0)
    return SpamLimits(**{**base, **changes})  # type: ignore[arg-type]


def test_bucket_allows_a_burst_then_says_how_long_to_wait() -> None:
    """A full bucket gives burst sends at once; the next waits exactly one refill."""
    bucket = TokenBucket(rate=2.0, burst=3, tokens=3, stamp=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.25) == pytest.approx(0.25)
    assert bucket.take(0.5) == 0.0


def test_bucket_refills_to_its_burst_and_no_further() -> None:
    """After a long pause the bucket holds burst tokens, not more."""
    bucket = TokenBucket(rate=2.0, burst=3, tokens=0, stamp=0.0)
    assert [bucket.take(100.0) for _ in range(4)][-1] == pytest.approx(0.5)


def test_guard_limits_each_user_apart_and_follows_new_limits() -> None:
    """Users have their own buckets; a raised burst applies on the next send."""
    clock = Clock()
    guard = SpamGuard(clock)
    assert [guard.wait(KEY, _limits()) for _ in range(3)] == [0.0] * 3
    assert guard.wait(KEY, _limits()) > 0
    assert guard.wait((1, "b" * 32), _limits()) == 0.0
    clock.now += 10
    assert [guard.wait(KEY, _limits(burst=5)) for _ in range(5)] == [0.0] * 5


def test_near_duplicates_to_many_conversations_are_counted() -> None:
    """Nearly the same text to different conversations counts each conversation once."""
    guard, limits = SpamGuard(Clock()), _limits()
    spam = "cheap watches at www example com call now"
    assert guard.same_text(KEY, "c1", spam, limits) == 1
    assert guard.same_text(KEY, "c1", spam, limits) == 1
    assert guard.same_text(KEY, "c2", spam + " 123", limits) == 2
    assert guard.same_text(KEY, "c3", "hello how are you today", limits) == 1
    assert guard.same_text(KEY, "c4", spam + " 456", limits) == 3


def test_sends_older_than_the_window_are_forgotten() -> None:
    """The same text after the window has passed starts a new count."""
    clock = Clock()
    guard, limits = SpamGuard(clock), _limits(window_seconds=60.0)
    guard.same_text(KEY, "c1", "buy now buy now", limits)
    clock.now += 61
    assert guard.same_text(KEY, "c2", "buy now buy now", limits) == 1


def test_similarity_is_jaccard_of_trigrams() -> None:
    """Texts that share most 3-grams are similar; short distinct ones are not."""
    a, b = shingles("abcdefghij"), shingles("abcdefghiX")
    assert similar(a, b, 0.7) and not similar(a, b, 0.8)
    assert not similar(shingles("hi"), shingles("yo"), 0.5)


def test_conversations_opened_are_counted_once_each_within_the_window() -> None:
    """Opening the same conversation twice counts once; old openings drop out."""
    clock = Clock()
    guard, limits = SpamGuard(clock), _limits()
    assert [guard.opened(KEY, c, limits) for c in ("a", "b", "a", "c")] == [1, 2, 2, 3]
    clock.now += 61
    assert guard.opened(KEY, "d", limits) == 1


def test_slow_penalty_allows_one_send_per_interval_until_it_ends() -> None:
    """Under slow, the next send waits a full interval, then one per interval, then normal."""
    clock = Clock()
    guard, limits = SpamGuard(clock), _limits()
    guard.punish(KEY, "same_text", limits)
    assert guard.wait(KEY, limits) == pytest.approx(10.0)
    clock.now += 10
    assert guard.wait(KEY, limits) == 0.0
    assert guard.wait(KEY, limits) == pytest.approx(10.0)
    clock.now += 300
    assert guard.penalty(KEY) is None
    assert [guard.wait(KEY, limits) for _ in range(3)] == [0.0] * 3


def test_block_penalty_runs_for_its_time() -> None:
    """A block penalty is there, with the time left, until it expires."""
    clock = Clock()
    guard, limits = SpamGuard(clock), _limits(action="block")
    penalty = guard.punish(KEY, "strangers", limits)
    clock.now += 100
    assert guard.penalty(KEY) == penalty
    assert guard.retry_after(penalty) == pytest.approx(200.0)
    clock.now += 200
    assert guard.penalty(KEY) is None


def test_sweep_forgets_idle_users() -> None:
    """Full buckets, ended penalties and old sends are dropped, so memory stays bounded."""
    clock = Clock()
    guard, limits = SpamGuard(clock), _limits()
    guard.wait(KEY, limits)
    guard.same_text(KEY, "c", "text", limits)
    guard.punish((1, "b" * 32), "same_text", limits)
    assert len(guard) == 2
    clock.now += 2 * 86400
    guard.sweep(clock.now)
    assert len(guard) == 0
