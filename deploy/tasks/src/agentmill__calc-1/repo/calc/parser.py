"""Recursive-descent parser producing :mod:`calc.nodes` trees.

Grammar, from lowest to highest precedence::

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/" | "%") unary)*
    unary   := ("+" | "-") unary | power
    power   := primary ("**" primary)*
    primary := NUMBER | NAME | NAME "(" [expr ("," expr)*] ")" | "(" expr ")"
"""

from typing import List, Optional

from .nodes import BinOp, Call, Name, Node, Number, UnaryOp
from .tokens import CalcError, Token, tokenize


class ParseError(CalcError):
    """The token stream does not form a valid expression."""


def _to_number(text: str):
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


class Parser:
    """Parses one expression from a list of tokens ending in EOF."""

    def __init__(self, tokens: List[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def accept(self, kind: str, text: Optional[str] = None) -> Optional[Token]:
        """Consume and return the next token if it matches, else ``None``."""
        tok = self.peek()
        if tok.kind == kind and (text is None or tok.text == text):
            self.pos += 1
            return tok
        return None

    def expect(self, kind: str, text: Optional[str] = None) -> Token:
        tok = self.accept(kind, text)
        if tok is None:
            found = self.peek()
            wanted = text or kind
            raise ParseError(f"expected {wanted!r} at position {found.pos}, found {found.text or 'end of input'!r}")
        return tok

    def parse(self) -> Node:
        node = self._expr()
        if self.peek().kind != "EOF":
            tok = self.peek()
            raise ParseError(f"unexpected {tok.text!r} at position {tok.pos}")
        return node

    def _binary(self, operand, ops) -> Node:
        node = operand()
        while True:
            tok = self.peek()
            if tok.kind != "OP" or tok.text not in ops:
                return node
            self.pos += 1
            node = BinOp(tok.text, node, operand())

    def _expr(self) -> Node:
        return self._binary(self._term, ("+", "-"))

    def _term(self) -> Node:
        return self._binary(self._unary, ("*", "/", "%"))

    def _unary(self) -> Node:
        tok = self.accept("OP", "-") or self.accept("OP", "+")
        if tok is not None:
            return UnaryOp(tok.text, self._unary())
        return self._power()

    def _power(self) -> Node:
        node = self._primary()
        while self.accept("OP", "**"):
            node = BinOp("**", node, self._primary())
        return node

    def _primary(self) -> Node:
        tok = self.peek()
        if tok.kind == "NUMBER":
            self.pos += 1
            return Number(_to_number(tok.text))
        if tok.kind == "NAME":
            self.pos += 1
            if not self.accept("LPAREN"):
                return Name(tok.text)
            args = []
            if not self.accept("RPAREN"):
                args.append(self._expr())
                while self.accept("COMMA"):
                    args.append(self._expr())
                self.expect("RPAREN")
            return Call(tok.text, tuple(args))
        if self.accept("LPAREN"):
            node = self._expr()
            self.expect("RPAREN")
            return node
        raise ParseError(f"unexpected {tok.text or 'end of input'!r} at position {tok.pos}")


def parse(source: str) -> Node:
    """Parse *source* into a syntax tree."""
    return Parser(tokenize(source)).parse()
