"""MSI conditional statements, evaluated for the simulated engine (MsiEvaluateConditionW).

The grammar is the one of "Conditional Statement Syntax" in the Windows
Installer documentation:

* terms: a property (``INSTALLDIR``), ``%ENV`` (an environment variable),
  ``"literal"`` text (no escapes), integers (``-12``), and the states
  ``$Component`` / ``&Feature`` (the requested action) and ``?Component`` /
  ``!Feature`` (the installed state), which are integers (INSTALLSTATE);
* comparisons: ``=  <>  <  >  <=  >=``; ``><`` contains (bitwise AND of two
  integers), ``<<`` starts with, ``>>`` ends with; a ``~`` in front of any of
  them compares case-insensitively;
* logic: ``NOT`` binds tightest, then ``AND``, then ``OR``, ``XOR``, ``EQV``,
  ``IMP`` (same level, left to right); keywords in any case; parentheses.

A property compared with an integer is compared as an integer when its value
is one, else only ``<>`` holds; two properties or a property and a literal
are compared as integers when both are all digits, else as text; a literal
and an integer never compare (false). A term alone is true when it is a
non-zero integer or non-empty text. An empty condition is
:data:`~msica.enums.Condition.NONE`, a malformed one
:data:`~msica.enums.Condition.ERROR`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from msica.enums import Condition

__all__ = ["Lookups", "evaluate"]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<literal>"[^"]*")
  | (?P<operator>~?(?:<=|>=|<>|><|<<|>>|=|<|>))
  | (?P<paren>[()])
  | (?P<sigil>[%$?&!])
  | (?P<number>-?\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.#]*)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"NOT", "AND", "OR", "XOR", "EQV", "IMP"}
_INSTALLSTATE_UNKNOWN = -1


@dataclass(frozen=True)
class Lookups:
    """Where a condition's terms get their values."""

    property: Callable[[str], str]
    component: Callable[[str], tuple[int, int]] = lambda name: (-1, -1)
    """``(installed, requested)`` INSTALLSTATE of a component."""
    feature: Callable[[str], tuple[int, int]] = lambda name: (-1, -1)
    """``(installed, requested)`` INSTALLSTATE of a feature."""
    environment: Callable[[str], str] = lambda name: os.environ.get(name, "")


class _Malformed(Exception):
    pass


@dataclass(frozen=True)
class _Value:
    """A term: text, or an integer; ``symbol`` when it came from a property or variable."""

    text: str | None = None
    number: int | None = None
    symbol: bool = False

    def truth(self) -> bool:
        if self.number is not None:
            return self.number != 0
        return bool(self.text)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise _Malformed(f"unexpected {text[position]!r} at {position}")
        kind = match.lastgroup or ""
        value = match.group()
        position = match.end()
        if kind == "space":
            continue
        if kind == "ident" and value.upper() in _KEYWORDS:
            kind, value = "keyword", value.upper()
        tokens.append((kind, value))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], lookups: Lookups) -> None:
        self.tokens = tokens
        self.position = 0
        self.lookups = lookups

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end":
            raise _Malformed("the condition ends too early")
        self.position += 1
        return token

    def expression(self) -> bool:
        value = self.conjunction()
        while self.peek() in (("keyword", "OR"), ("keyword", "XOR"), ("keyword", "EQV"),
                              ("keyword", "IMP")):
            operator = self.take()[1]
            right = self.conjunction()
            if operator == "OR":
                value = value or right
            elif operator == "XOR":
                value = value != right
            elif operator == "EQV":
                value = value == right
            else:
                value = (not value) or right
        return value

    def conjunction(self) -> bool:
        value = self.factor()
        while self.peek() == ("keyword", "AND"):
            self.take()
            right = self.factor()
            value = value and right
        return value

    def factor(self) -> bool:
        kind, text = self.peek()
        if (kind, text) == ("keyword", "NOT"):
            self.take()
            return not self.factor()
        if (kind, text) == ("paren", "("):
            self.take()
            value = self.expression()
            if self.take() != ("paren", ")"):
                raise _Malformed("a '(' is not closed")
            return value
        left = self.term()
        if self.peek()[0] != "operator":
            return left.truth()
        operator = self.take()[1]
        right = self.term()
        return _compare(left, operator, right)

    def term(self) -> _Value:
        kind, text = self.take()
        if kind == "literal":
            return _Value(text=text[1:-1])
        if kind == "number":
            return _Value(number=int(text))
        if kind == "ident":
            return _Value(text=self.lookups.property(text), symbol=True)
        if kind == "sigil":
            name_kind, name = self.take()
            if name_kind not in ("ident", "keyword"):
                raise _Malformed(f"{text} must be followed by a name")
            if text == "%":
                return _Value(text=self.lookups.environment(name), symbol=True)
            if text in "$?":
                installed, requested = self.lookups.component(name)
            else:
                installed, requested = self.lookups.feature(name)
            return _Value(number=requested if text in "$&" else installed)
        raise _Malformed(f"{text!r} where a value was expected")


def _is_number(text: str) -> bool:
    return text.isdigit() and text.isascii()


def _as_number(text: str) -> int | None:
    body = text[1:] if text.startswith("-") else text
    if not body or not _is_number(body):
        return None
    return int(text)


def _compare(left: _Value, operator: str, right: _Value) -> bool:
    fold = operator.startswith("~")
    op = operator.lstrip("~")
    if left.number is not None and right.number is not None:
        return _compare_numbers(left.number, op, right.number)
    if left.number is not None or right.number is not None:
        number = left.number if left.number is not None else right.number
        other = right if left.number is not None else left
        if not other.symbol:  # a literal never compares with an integer
            return False
        converted = _as_number(other.text or "")
        if converted is None:
            return op == "<>"
        assert number is not None
        if left.number is not None:
            return _compare_numbers(number, op, converted)
        return _compare_numbers(converted, op, number)
    a, b = left.text or "", right.text or ""
    if op in ("><", "<<", ">>"):
        if not a:
            return False
        if not b:
            return True
        if _is_number(a) and _is_number(b):
            return _compare_numbers(int(a), op, int(b))
        if fold:
            a, b = a.casefold(), b.casefold()
        if op == "><":
            return b in a
        return a.startswith(b) if op == "<<" else a.endswith(b)
    both_symbols_or_one = left.symbol or right.symbol
    if both_symbols_or_one and _is_number(a) and _is_number(b):
        return _compare_numbers(int(a), op, int(b))
    if fold:
        a, b = a.casefold(), b.casefold()
    return _compare_numbers_or_text(a, op, b)


def _compare_numbers(a: int, op: str, b: int) -> bool:
    if op == "><":
        return bool(a & b)
    if op == ">>":
        return (a & 0xFFFF) == b
    if op == "<<":
        return ((a >> 16) & 0xFFFF) == b
    return _compare_numbers_or_text(a, op, b)


def _compare_numbers_or_text(a: int | str, op: str, b: int | str) -> bool:
    if op == "=":
        return a == b
    if op == "<>":
        return a != b
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


def evaluate(condition: str, lookups: Lookups) -> Condition:
    """TRUE or FALSE for ``condition``; NONE when it is empty, ERROR when malformed."""
    try:
        tokens = _tokens(condition)
        if not tokens:
            return Condition.NONE
        parser = _Parser(tokens, lookups)
        value = parser.expression()
        if parser.peek()[0] != "end":
            raise _Malformed(f"unexpected {parser.peek()[1]!r}")
    except _Malformed:
        return Condition.ERROR
    return Condition.TRUE if value else Condition.FALSE
