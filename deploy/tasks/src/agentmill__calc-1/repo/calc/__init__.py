"""calc - a tiny, safe arithmetic expression evaluator.

Expressions are tokenized (:mod:`calc.tokens`), parsed into a small syntax
tree (:mod:`calc.parser`, :mod:`calc.nodes`) and evaluated
(:mod:`calc.evaluator`).  Nothing is ever passed to Python's ``eval``.

Example::

    >>> from calc import calculate
    >>> calculate("2 * (3 + 4)")
    14
    >>> calculate("r * r * pi", r=2) > 12
    True
"""

from typing import Union

from .evaluator import EvalError, evaluate
from .parser import ParseError, parse
from .tokens import CalcError, TokenizeError

Number = Union[int, float]


def calculate(source: str, **variables: Number) -> Number:
    """Parse and evaluate *source* with the given variables."""
    return evaluate(parse(source), variables)


__all__ = [
    "CalcError",
    "EvalError",
    "ParseError",
    "TokenizeError",
    "calculate",
    "evaluate",
    "parse",
]

__version__ = "0.4.0"
