"""An LRU cache whose entries expire after a time-to-live."""

from typing import Any, Dict, Hashable, Optional

from .clock import Clock, MonotonicClock
from .lru import MISSING, LRUCache


class TTLCache(LRUCache):
    """An :class:`LRUCache` whose entries expire *ttl* seconds after being set.

    An entry stored at time ``t`` with time-to-live ``ttl`` is visible while
    ``clock.now() < t + ttl``.  Expired entries are dropped lazily, when they
    are looked at, or eagerly by :meth:`expire`.
    """

    def __init__(
        self,
        maxsize: int = 128,
        ttl: float = 60.0,
        clock: Optional[Clock] = None,
    ) -> None:
        super().__init__(maxsize)
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.ttl = ttl
        self.clock = clock if clock is not None else MonotonicClock()
        self._expires: Dict[Hashable, float] = {}

    def set(self, key: Hashable, value: Any, ttl: Optional[float] = None) -> None:
        """Store *value*; *ttl* overrides the cache-wide time-to-live."""
        ttl = self.ttl if ttl is None else ttl
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        super().set(key, value)
        self._expires[key] = self.clock.now() + ttl

    def _is_expired(self, key: Hashable) -> bool:
        return self.clock.now() >= self._expires[key]

    def get(self, key: Hashable, default: Any = None) -> Any:
        if key in self._data and self._is_expired(key):
            self._remove(key)
        return super().get(key, default)

    def peek(self, key: Hashable, default: Any = None) -> Any:
        if key in self._data and self._is_expired(key):
            return default
        return super().peek(key, default)

    __getitem__ = peek

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data and not self._is_expired(key)

    def __len__(self) -> int:
        return sum(1 for key in self._data if not self._is_expired(key))

    def ttl_remaining(self, key: Hashable) -> Optional[float]:
        """Seconds until *key* expires, or ``None`` if it is absent or expired."""
        if key not in self:
            return None
        return self._expires[key] - self.clock.now()

    def expire(self) -> int:
        """Drop every expired entry now; return how many were dropped."""
        dead = [key for key in self._data if self._is_expired(key)]
        for key in dead:
            self._remove(key)
        return len(dead)

    def pop(self, key: Hashable, default: Any = MISSING) -> Any:
        if key in self._data and self._is_expired(key):
            self._remove(key)
        return super().pop(key, default)

    def _remove(self, key: Hashable) -> None:
        super()._remove(key)
        self._expires.pop(key, None)
