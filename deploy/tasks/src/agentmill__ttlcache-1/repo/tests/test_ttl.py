import pytest

from ttlcache import ManualClock, TTLCache


@pytest.fixture
def clock():
    return ManualClock(100.0)


def test_entry_visible_before_ttl(clock):
    cache = TTLCache(10, ttl=5, clock=clock)
    cache.set("k", "v")
    clock.advance(4.9)
    assert cache.get("k") == "v"
    assert cache.ttl_remaining("k") == pytest.approx(0.1)


def test_entry_expires_at_ttl(clock):
    cache = TTLCache(10, ttl=5, clock=clock)
    cache.set("k", "v")
    clock.advance(5)
    assert "k" not in cache
    assert cache.get("k", "default") == "default"
    assert len(cache) == 0


def test_per_entry_ttl(clock):
    cache = TTLCache(10, ttl=5, clock=clock)
    cache.set("short", 1, ttl=1)
    cache.set("long", 2)
    clock.advance(2)
    assert cache.keys() == ["short", "long"]
    assert cache.expire() == 1
    assert cache.keys() == ["long"]


def test_rejects_non_positive_ttl(clock):
    with pytest.raises(ValueError):
        TTLCache(10, ttl=0, clock=clock)
    cache = TTLCache(10, ttl=5, clock=clock)
    with pytest.raises(ValueError):
        cache.set("k", "v", ttl=-1)


def test_eviction_still_applies(clock):
    cache = TTLCache(2, ttl=60, clock=clock)
    for key in "abc":
        cache.set(key, key.upper())
    assert cache.keys() == ["b", "c"]


def test_manual_clock_cannot_go_backwards(clock):
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(50)
