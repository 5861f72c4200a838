from ttlcache import ManualClock, memoize


def test_caches_results():
    calls = []

    @memoize
    def square(x):
        calls.append(x)
        return x * x

    assert square(3) == 9
    assert square(3) == 9
    assert calls == [3]
    assert square.cache.stats.hits == 1


def test_keyword_order_does_not_matter():
    calls = []

    @memoize()
    def area(width, height):
        calls.append((width, height))
        return width * height

    assert area(width=2, height=3) == 6
    assert area(height=3, width=2) == 6
    assert len(calls) == 1


def test_positional_and_keyword_calls_are_distinct():
    @memoize()
    def ident(a, b=0):
        return (a, b)

    assert ident(1, 2) == (1, 2)
    assert ident(1, b=2) == (1, 2)
    assert len(ident.cache) == 2


def test_ttl_results_expire():
    clock = ManualClock()
    calls = []

    @memoize(ttl=10, clock=clock)
    def fetch(key):
        calls.append(key)
        return key.upper()

    fetch("a")
    clock.advance(9)
    fetch("a")
    clock.advance(1)
    fetch("a")
    assert calls == ["a", "a"]


def test_cache_clear_and_wraps():
    @memoize(maxsize=2)
    def double(x):
        """Double x."""
        return 2 * x

    double(1)
    double.cache_clear()
    assert len(double.cache) == 0
    assert double.__name__ == "double"
    assert double.__doc__ == "Double x."
