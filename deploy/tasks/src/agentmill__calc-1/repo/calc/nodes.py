"""Syntax tree node types and small helpers that walk them."""

from dataclasses import dataclass
from typing import Iterator, Set, Tuple, Union


@dataclass(frozen=True)
class Number:
    value: Union[int, float]


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class UnaryOp:
    op: str
    operand: "Node"


@dataclass(frozen=True)
class BinOp:
    op: str
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Call:
    func: str
    args: Tuple["Node", ...]


Node = Union[Number, Name, UnaryOp, BinOp, Call]


def walk(node: Node) -> Iterator[Node]:
    """Yield *node* and all of its descendants, depth first."""
    yield node
    if isinstance(node, UnaryOp):
        yield from walk(node.operand)
    elif isinstance(node, BinOp):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)


def free_names(node: Node) -> Set[str]:
    """The variable names an expression refers to (function names excluded)."""
    return {n.name for n in walk(node) if isinstance(n, Name)}


def to_source(node: Node) -> str:
    """Render *node* fully parenthesised, which makes precedence visible."""
    if isinstance(node, Number):
        return repr(node.value)
    if isinstance(node, Name):
        return node.name
    if isinstance(node, UnaryOp):
        return f"({node.op}{to_source(node.operand)})"
    if isinstance(node, BinOp):
        return f"({to_source(node.left)} {node.op} {to_source(node.right)})"
    if isinstance(node, Call):
        return f"{node.func}({', '.join(to_source(a) for a in node.args)})"
    raise TypeError(f"not a node: {node!r}")
