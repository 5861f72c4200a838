"""Evaluate :mod:`calc.nodes` syntax trees."""

import math
import operator
from typing import Callable, Dict, Mapping, Optional, Union

from .nodes import BinOp, Call, Name, Node, Number, UnaryOp
from .tokens import CalcError

Value = Union[int, float]


class EvalError(CalcError):
    """The expression is well-formed but cannot be evaluated."""


BINARY: Dict[str, Callable[[Value, Value], Value]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
    "**": operator.pow,
}

FUNCTIONS: Dict[str, Callable[..., Value]] = {
    "abs": abs,
    "ceil": math.ceil,
    "floor": math.floor,
    "max": max,
    "min": min,
    "round": round,
    "sqrt": math.sqrt,
}

CONSTANTS: Dict[str, Value] = {"pi": math.pi, "e": math.e}


def evaluate(
    node: Node,
    variables: Optional[Mapping[str, Value]] = None,
    functions: Optional[Mapping[str, Callable[..., Value]]] = None,
) -> Value:
    """Compute the value of *node*.

    Names are looked up in *variables* first, then in :data:`CONSTANTS`.
    *functions* replaces the default :data:`FUNCTIONS` table when given.
    """
    env = dict(CONSTANTS)
    env.update(variables or {})
    funcs = FUNCTIONS if functions is None else functions
    return _eval(node, env, funcs)


def _eval(node: Node, env: Mapping[str, Value], funcs: Mapping[str, Callable[..., Value]]) -> Value:
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Name):
        try:
            return env[node.name]
        except KeyError:
            raise EvalError(f"unknown variable {node.name!r}") from None
    if isinstance(node, UnaryOp):
        value = _eval(node.operand, env, funcs)
        return -value if node.op == "-" else +value
    if isinstance(node, BinOp):
        left = _eval(node.left, env, funcs)
        right = _eval(node.right, env, funcs)
        if node.op in ("/", "%") and right == 0:
            raise EvalError("division by zero")
        try:
            return BINARY[node.op](left, right)
        except OverflowError:
            raise EvalError("result too large") from None
    if isinstance(node, Call):
        func = funcs.get(node.func)
        if func is None:
            raise EvalError(f"unknown function {node.func!r}")
        args = [_eval(arg, env, funcs) for arg in node.args]
        try:
            return func(*args)
        except (TypeError, ValueError) as exc:
            raise EvalError(f"{node.func}(): {exc}") from None
    raise EvalError(f"cannot evaluate {node!r}")
