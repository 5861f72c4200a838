"""Function decorators backed by the caches in this package."""

import functools
from typing import Any, Callable, Dict, Hashable, Optional, Tuple

from .clock import Clock
from .lru import MISSING, LRUCache
from .ttl import TTLCache

# Separates positional from keyword arguments inside a key, so that
# f(1, 2) and f(1, b=2) never share an entry.
_KWARGS_MARK = ("<kwargs>",)


def make_key(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Hashable:
    """Build a hashable cache key from a call's arguments.

    Keyword arguments are sorted by name, so ``f(a=1, b=2)`` and
    ``f(b=2, a=1)`` share an entry.
    """
    key: Tuple[Any, ...] = tuple(args)
    if kwargs:
        key += _KWARGS_MARK + tuple(sorted(kwargs))
    return key


def memoize(
    maxsize: Any = 128,
    ttl: Optional[float] = None,
    clock: Optional[Clock] = None,
) -> Any:
    """Cache the results of the decorated function.

    Use as ``@memoize``, ``@memoize()`` or ``@memoize(maxsize=..., ttl=...)``.
    With *ttl* the results expire (see :class:`TTLCache`); without it they
    stay until evicted.  Arguments must be hashable.

    The wrapper exposes ``cache`` (the underlying cache object) and
    ``cache_clear()``.
    """
    if callable(maxsize):  # used as a bare @memoize
        return memoize()(maxsize)

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        if ttl is None:
            cache: LRUCache = LRUCache(maxsize)
        else:
            cache = TTLCache(maxsize, ttl, clock)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = make_key(args, kwargs)
            value = cache.get(key, MISSING)
            if value is MISSING:
                value = func(*args, **kwargs)
                cache.set(key, value)
            return value

        wrapper.cache = cache  # type: ignore[attr-defined]
        wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
        return wrapper

    return decorator
