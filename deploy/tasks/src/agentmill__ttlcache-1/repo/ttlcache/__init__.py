"""ttlcache - LRU and TTL caches with a memoize decorator.

The building blocks:

* :class:`LRUCache` keeps at most ``maxsize`` entries and evicts the least
  recently used one when full.
* :class:`TTLCache` is an :class:`LRUCache` whose entries also expire
  ``ttl`` seconds after they were stored.
* :func:`memoize` caches a function's results in either of the above.
* :class:`ManualClock` and :class:`MonotonicClock` provide the notion of
  time used by :class:`TTLCache`; tests use the manual one.

Example::

    >>> from ttlcache import TTLCache, ManualClock
    >>> clock = ManualClock()
    >>> cache = TTLCache(maxsize=10, ttl=5, clock=clock)
    >>> cache.set("token", "abc")
    >>> clock.advance(4)
    >>> cache.get("token")
    'abc'
    >>> clock.advance(1)
    >>> cache.get("token") is None
    True
"""

from .clock import Clock, ManualClock, MonotonicClock
from .lru import CacheStats, LRUCache
from .memoize import memoize
from .ttl import TTLCache

__all__ = [
    "CacheStats",
    "Clock",
    "LRUCache",
    "ManualClock",
    "MonotonicClock",
    "TTLCache",
    "memoize",
]

__version__ = "1.2.0"
