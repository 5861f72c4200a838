"""A bounded least-recently-used cache."""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Hashable, Iterator, List

MISSING = object()


@dataclass
class CacheStats:
    """Counters maintained by every cache."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class LRUCache:
    """A mapping that holds at most *maxsize* entries.

    :meth:`get` and :meth:`set` mark an entry as most recently used; when the
    cache is full the least recently used entry is evicted.  :meth:`peek`
    and ``in`` look at an entry without touching its position.
    """

    def __init__(self, maxsize: int = 128) -> None:
        if maxsize <= 0:
            raise ValueError("maxsize must be positive")
        self.maxsize = maxsize
        self.stats = CacheStats()
        self._data: "OrderedDict[Hashable, Any]" = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self._data))

    def keys(self) -> List[Hashable]:
        """Keys from least to most recently used."""
        return list(self._data)

    def get(self, key: Hashable, default: Any = None) -> Any:
        """Return the value for *key* and mark it as recently used."""
        value = self._data.get(key, MISSING)
        if value is MISSING:
            self.stats.misses += 1
            return default
        self._data.move_to_end(key)
        self.stats.hits += 1
        return value

    def peek(self, key: Hashable, default: Any = None) -> Any:
        """Return the value for *key* without updating recency or stats."""
        return self._data.get(key, default)

    def set(self, key: Hashable, value: Any) -> None:
        """Store *value*, evicting the least recently used entries if full."""
        if key in self._data:
            self._data.move_to_end(key)
        self._data[key] = value
        while len(self._data) > self.maxsize:
            oldest = next(iter(self._data))
            self._remove(oldest)
            self.stats.evictions += 1

    def pop(self, key: Hashable, default: Any = MISSING) -> Any:
        """Remove *key* and return its value (or *default*, or raise KeyError)."""
        if key not in self._data:
            if default is MISSING:
                raise KeyError(key)
            return default
        value = self._data[key]
        self._remove(key)
        return value

    def clear(self) -> None:
        for key in list(self._data):
            self._remove(key)

    def _remove(self, key: Hashable) -> None:
        """Drop *key*; subclasses extend this to clean up their bookkeeping."""
        del self._data[key]

    __getitem__ = peek

    def __setitem__(self, key: Hashable, value: Any) -> None:
        self.set(key, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(maxsize={self.maxsize}, size={len(self)})"
