import pytest

from ttlcache import LRUCache


def test_maxsize_must_be_positive():
    with pytest.raises(ValueError):
        LRUCache(0)


def test_evicts_least_recently_used():
    cache = LRUCache(2)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.get("a")
    cache.set("c", 3)
    assert cache.keys() == ["a", "c"]
    assert cache.stats.evictions == 1


def test_peek_does_not_change_order():
    cache = LRUCache(2)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.peek("a") == 1
    cache.set("c", 3)
    assert "a" not in cache
    assert cache.keys() == ["b", "c"]


def test_overwrite_refreshes_recency():
    cache = LRUCache(2)
    cache.set("a", 1)
    cache.set("b", 2)
    cache["a"] = 10
    cache.set("c", 3)
    assert cache.keys() == ["a", "c"]
    assert cache["a"] == 10


def test_stats_and_hit_rate():
    cache = LRUCache(4)
    cache.set("a", 1)
    cache.get("a")
    cache.get("a")
    cache.get("zzz")
    assert (cache.stats.hits, cache.stats.misses) == (2, 1)
    assert cache.stats.hit_rate == pytest.approx(2 / 3)


def test_pop_and_clear():
    cache = LRUCache(4)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.pop("a") == 1
    assert cache.pop("a", "gone") == "gone"
    with pytest.raises(KeyError):
        cache.pop("a")
    cache.clear()
    assert len(cache) == 0
