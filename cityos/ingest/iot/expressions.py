"""A small, safe expression language for device attribute ``expression`` (ED-DP-1).

FIWARE IoT Agents accept an ``expression`` per attribute (JEXL there) that computes the stored
value from the measures.  Here the expression is parsed once, at provisioning, into a tree of tuples
by a hand-written recursive-descent parser; evaluation walks that tree.  Nothing is ever passed to
``eval``: a name can only read a measure, a call can only reach the functions in :data:`FUNCTIONS`.

Grammar (lowest precedence first)::

    expr    := or ('?' expr ':' expr)?
    or      := and (('||' | 'or') and)*
    and     := cmp (('&&' | 'and') cmp)*
    cmp     := sum (('==' | '!=' | '<' | '<=' | '>' | '>=') sum)?
    sum     := product (('+' | '-') product)*
    product := unary (('*' | '/' | '%') unary)*
    unary   := ('-' | '!' | 'not') unary | primary
    primary := NUMBER | STRING | 'true' | 'false' | 'null' | NAME | NAME '(' args ')' | '(' expr ')'

A missing measure is ``null``; arithmetic on ``null`` or a division by zero gives ``null``, and an
attribute whose expression gives ``null`` is not written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

Node = tuple[Any, ...]
MAX_LENGTH = 2000
MAX_DEPTH = 40
# every intermediate string is capped: replace() and concat can otherwise grow a text
# geometrically (one message could make the agent allocate gigabytes)
MAX_TEXT = 64 * 1024


class ExpressionError(ValueError):
    """The expression text is not valid in the grammar above."""


_TOKEN = re.compile(r"""\s*(?:
    (?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|[-+*/%<>!?:(),])
)""", re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ExpressionError(f"unexpected character at {pos}: {text[pos:pos + 10]!r}")
        pos = match.end()
        kind = match.lastgroup or ""
        raw = match.group(kind)
        if kind == "num":
            out.append(("num", float(raw) if any(c in raw for c in ".eE") else int(raw)))
        elif kind == "str":
            out.append(("str", re.sub(r"\\(.)", r"\1", raw[1:-1])))
        elif kind == "name" and raw in ("and", "or", "not"):
            out.append(("op", {"and": "&&", "or": "||", "not": "!"}[raw]))
        else:
            out.append((kind, raw))
    out.append(("end", None))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.depth = 0

    def peek(self) -> tuple[str, Any]:
        return self.tokens[self.pos]

    def take(self, op: str | None = None) -> tuple[str, Any]:
        token = self.tokens[self.pos]
        if op is not None and token != ("op", op):
            raise ExpressionError(f"expected {op!r}, found {token[1]!r}")
        self.pos += 1
        return token

    def at(self, *ops: str) -> str | None:
        kind, value = self.peek()
        return value if kind == "op" and value in ops else None

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError("the expression is nested too deeply")
        node = self.binary(0)
        if self.at("?"):
            self.take()
            then = self.expr()
            self.take(":")
            node = ("if", node, then, self.expr())
        self.depth -= 1
        return node

    _LEVELS = (("||",), ("&&",), ("==", "!=", "<", "<=", ">", ">="), ("+", "-"), ("*", "/", "%"))

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while (op := self.at(*self._LEVELS[level])) is not None:
            self.take()
            node = ("bin", op, node, self.binary(level + 1))
            if level == 2:       # comparisons do not chain
                break
        return node

    def unary(self) -> Node:
        if (op := self.at("-", "!")) is not None:
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExpressionError("the expression is nested too deeply")
            node = ("neg" if op == "-" else "not", self.unary())
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        kind, value = self.take()
        if kind in ("num", "str"):
            return ("lit", value)
        if kind == "name":
            if value in ("true", "false", "null"):
                return ("lit", {"true": True, "false": False, "null": None}[value])
            if self.at("("):
                return self.call(value)
            return ("name", value)
        if (kind, value) == ("op", "("):
            node = self.expr()
            self.take(")")
            return node
        raise ExpressionError(f"unexpected {value!r}" if value is not None else "unexpected end")

    def call(self, name: str) -> Node:
        if name not in FUNCTIONS:
            raise ExpressionError(f"unknown function {name!r}; known: {', '.join(sorted(FUNCTIONS))}")
        self.take("(")
        args: list[Node] = []
        if not self.at(")"):
            args.append(self.expr())
            while self.at(","):
                self.take()
                args.append(self.expr())
        self.take(")")
        low, high, _fn = FUNCTIONS[name]
        if not low <= len(args) <= high:
            raise ExpressionError(f"{name}() takes {low}..{high} arguments, got {len(args)}")
        return ("call", name, tuple(args))


def parse_expression(text: Any) -> Node:
    """The syntax tree of ``text``; :class:`ExpressionError` when it is not valid."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("an expression must be a non-empty string")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"an expression may have at most {MAX_LENGTH} characters")
    parser = _Parser(text)
    node = parser.expr()
    if parser.peek()[0] != "end":
        raise ExpressionError(f"unexpected {parser.peek()[1]!r} after the expression")
    return node


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() and "." not in str(value) else number


def _arith(op: str, a: Any, b: Any) -> Any:
    # UltraLight sends every measure as text: "+" adds numbers written as text, and joins
    # only when one side is text that is not a number
    if op == "+" and (isinstance(a, str) or isinstance(b, str)) and (
            _number(a) is None or _number(b) is None):
        return None if a is None or b is None else f"{_text(a)}{_text(b)}"
    x, y = _number(a), _number(b)
    if x is None or y is None:
        return None
    if op in "/%" and y == 0:
        return None
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    return x / y if op == "/" else x % y


def _compare(op: str, a: Any, b: Any) -> Any:
    if op in ("==", "!="):
        if _number(a) is not None and _number(b) is not None and not (
                isinstance(a, str) and isinstance(b, str)):
            same = _number(a) == _number(b)
        else:
            same = a == b
        return same if op == "==" else not same
    x: Any = a
    y: Any = b
    if not (isinstance(a, str) and isinstance(b, str)):   # two texts compare as text
        x, y = _number(a), _number(b)
    if x is None or y is None:
        return None
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def evaluate(node: Node, names: dict[str, Any]) -> Any:
    """The value of a parsed expression, reading measures from ``names``.

    A text longer than :data:`MAX_TEXT` anywhere on the way makes the value None.
    """
    value = _evaluate(node, names)
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return None
    return value


def _evaluate(node: Node, names: dict[str, Any]) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "name":
        return names.get(node[1])
    if kind == "neg":
        value = _number(evaluate(node[1], names))
        return None if value is None else -value
    if kind == "not":
        return not evaluate(node[1], names)
    if kind == "if":
        return evaluate(node[2] if evaluate(node[1], names) else node[3], names)
    if kind == "call":
        fn = FUNCTIONS[node[1]][2]
        try:
            return fn(*(evaluate(arg, names) for arg in node[2]))
        except (TypeError, ValueError, OverflowError):
            return None
    _, op, left, right = node
    a = evaluate(left, names)
    if op == "&&":
        return bool(a) and bool(evaluate(right, names))
    if op == "||":
        return bool(a) or bool(evaluate(right, names))
    b = evaluate(right, names)
    return _arith(op, a, b) if op in "+-*/%" else _compare(op, a, b)


def _replace(s: Any, old: Any, new: Any) -> str | None:
    """``replace(s, old, new)``; None for an empty ``old`` or a result over :data:`MAX_TEXT`."""
    text, search, replacement = _text(s), _text(old), _text(new)
    if s is None or not search:         # None: an inner value was already refused (too long)
        return None
    grows = text.count(search) * (len(replacement) - len(search))
    if len(text) + grows > MAX_TEXT:
        return None
    return text.replace(search, replacement)


def _round(x: Any, digits: Any = 0) -> Any:
    number = _number(x)
    return None if number is None else round(number, int(_number(digits) or 0))


def _substr(s: Any, start: Any, length: Any = None) -> str:
    text = _text(s)
    begin = int(_number(start) or 0)
    return text[begin:] if length is None else text[begin:begin + int(_number(length) or 0)]


def _num_fn(f: Callable[[float], Any]) -> Callable[[Any], Any]:
    def apply(x: Any) -> Any:
        number = _number(x)
        return None if number is None else f(number)
    return apply


# name -> (fewest arguments, most arguments, implementation)
FUNCTIONS: dict[str, tuple[int, int, Callable[..., Any]]] = {
    "upper": (1, 1, lambda s: _text(s).upper()),
    "lower": (1, 1, lambda s: _text(s).lower()),
    "trim": (1, 1, lambda s: _text(s).strip()),
    "len": (1, 1, lambda s: len(_text(s))),
    "substr": (2, 3, _substr),
    "replace": (3, 3, _replace),
    "concat": (1, 16, lambda *parts: "".join(_text(p) for p in parts)),
    "contains": (2, 2, lambda s, part: _text(part) in _text(s)),
    "number": (1, 1, _number),
    "string": (1, 1, _text),
    "round": (1, 2, _round),
    "abs": (1, 1, _num_fn(abs)),
    "floor": (1, 1, _num_fn(math.floor)),
    "ceil": (1, 1, _num_fn(math.ceil)),
    "sqrt": (1, 1, _num_fn(lambda x: math.sqrt(x) if x >= 0 else None)),
    "min": (1, 16, lambda *xs: min((n for n in map(_number, xs) if n is not None), default=None)),
    "max": (1, 16, lambda *xs: max((n for n in map(_number, xs) if n is not None), default=None)),
}
