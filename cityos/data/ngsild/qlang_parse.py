"""Syntax of the NGSI-LD query language (``q``, ETSI GS CIM 009 clause 4.9): AST and parser.

The grammar accepted (ABNF-ish; whitespace between tokens is tolerated)::

    Query      = OrExpr
    OrExpr     = AndExpr *("|" AndExpr)          ; AND binds tighter than OR
    AndExpr    = Unary *(";" Unary)
    Unary      = "(" OrExpr ")" / "!" Attribute / Attribute [Operator Value]
    Attribute  = AttrName *("." AttrName) ["[" Key *("." Key) "]"]
    Operator   = "==" / "!=" / ">=" / ">" / "<=" / "<" / "~=" / "!~="

A dotted name after the attribute addresses a sub-attribute, or (as the last name) one of the
attribute's meta members (:data:`META_MEMBERS`).  The bracketed trailing path walks into a
compound JSON value (``address[city]``), picks a language of a LanguageProperty (``name[ja]``,
``name[*]``) or indexes into a JsonProperty.  ``[a][b]`` is read as ``[a.b]``.

Values: JSON numbers, ``true``/``false``, JSON-quoted strings, date-times (``2026-01-01T09:00:00Z``
or with a ``+09:00`` offset), dates, times, unquoted URIs (``urn:ngsi-ld:X:1``), value lists
``a,b,c`` and inclusive ranges ``lo..hi`` (lists and ranges only with ``==`` and ``!=``).  A
pattern after ``~=``/``!~=`` is a Python regular expression, quoted or not; unquoted, it ends at
``;``, ``|`` or ``)`` outside its own parentheses and brackets.

Every syntax error is a :class:`BadRequestData` whose detail names the 0-based character position
and what was expected there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from cityos.core.patterns import UserPatternError, compile_user_pattern
from cityos.core.problems import BadRequestData, Problem

# members of an attribute that a dotted path may address instead of a sub-attribute
META_MEMBERS = frozenset(
    {"observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt", "objectType"})
COMPARE_OPS = ("==", "!=", ">=", ">", "<=", "<")
PATTERN_OPS = ("~=", "!~=")
# longest first, so "!~=" wins over "!=" and ">=" over ">"
_OPERATORS = ("!~=", "==", "!=", "~=", ">=", "<=", ">", "<")
MAX_PATTERN = 256
MAX_DEPTH = 32
COMPARABLE_KINDS = frozenset({"number", "string", "datetime", "date", "time"})

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_DATETIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)([Zz]|[+-]\d{2}(?::?\d{2})?)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)([Zz]|[+-]\d{2}(?::?\d{2})?)?")
# a date-time whose "+hh:mm" offset lost its "+" to form decoding ("+" -> " ")
_SPACED_OFFSET = re.compile(r"\d{2}(?::?\d{2})?")
_STOP = frozenset(';|),"')
_KEY_FORBIDDEN = frozenset('.[]{};|()=!<>~",')
_JSON_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
                 "t": "\t"}


# --------------------------------------------------------------------------------------- AST

@dataclass(frozen=True)
class AttrPath:
    """``attr.sub1.sub2[trail1.trail2]``; ``sub`` may end with a meta member (``observedAt``)."""

    attr: str
    sub: tuple[str, ...] = ()
    trailing: tuple[str, ...] = ()

    @property
    def meta(self) -> str | None:
        """The meta member the path ends with, if any."""
        return self.sub[-1] if self.sub and self.sub[-1] in META_MEMBERS else None

    def __str__(self) -> str:
        text = ".".join((self.attr, *self.sub))
        return text + (f"[{'.'.join(self.trailing)}]" if self.trailing else "")


Scalar = bool | int | float | str | datetime | date


@dataclass(frozen=True)
class Literal:
    """One value: ``kind`` is number, string, boolean, datetime, date, time, uri or pattern.

    ``value`` is parsed: an aware UTC ``datetime``, a ``date``, seconds since midnight UTC (a
    float) for a time, the decoded text for strings, URIs and patterns.
    """

    kind: str
    value: Scalar
    raw: str


@dataclass(frozen=True)
class Range:
    """An inclusive range ``low..high`` (both bounds of the same comparable kind)."""

    low: Literal
    high: Literal


@dataclass(frozen=True)
class ValueList:
    """``a,b,c``: matches when any element does."""

    items: Sequence[Literal]  # stored as a tuple

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))


QValue = Literal | Range | ValueList


class QNode:
    """A node of a parsed query."""

    __slots__ = ()


@dataclass(frozen=True)
class Comparison(QNode):
    """``path op value``."""

    path: AttrPath
    op: str
    value: QValue


@dataclass(frozen=True)
class Exists(QNode):
    """A bare attribute path: the target element exists."""

    path: AttrPath


@dataclass(frozen=True)
class Not(QNode):
    """``!attr``: the target element does not exist."""

    node: Exists


@dataclass(frozen=True)
class And(QNode):
    """All of ``items`` (``;``)."""

    items: Sequence[QNode]  # stored as a tuple, so nodes stay hashable

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))


@dataclass(frozen=True)
class Or(QNode):
    """Any of ``items`` (``|``)."""

    items: Sequence[QNode]  # stored as a tuple, so nodes stay hashable

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))


# ----------------------------------------------------------------------- literal conversions

def _fraction6(clock: str) -> str:
    """Normalise a fractional second to at most 6 digits with a dot."""
    clock = clock.replace(",", ".")
    if "." in clock:
        whole, frac = clock.split(".", 1)
        clock = f"{whole}.{frac[:6]}"
    return clock


def _offset(zone: str | None) -> str:
    if not zone or zone in ("Z", "z"):
        return "+00:00"
    sign, digits = zone[0], zone[1:].replace(":", "")
    return f"{sign}{digits[:2]}:{digits[2:4] or '00'}"


def parse_datetime(text: str) -> datetime | None:
    """An aware UTC datetime for an ISO 8601 date-time (naive is UTC), else ``None``."""
    m = _DATETIME.fullmatch(text)
    if m is None:
        return None
    try:
        parsed = datetime.fromisoformat(f"{m[1]}T{_fraction6(m[2])}{_offset(m[3])}")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse_date(text: str) -> date | None:
    """A ``date`` for ``YYYY-MM-DD``, else ``None``."""
    if _DATE.fullmatch(text) is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_time(text: str) -> float | None:
    """Seconds since midnight UTC for an ISO 8601 time (naive is UTC), else ``None``."""
    m = _TIME.fullmatch(text)
    if m is None:
        return None
    try:
        parsed = time.fromisoformat(_fraction6(m[1]))
        shift = datetime.fromisoformat(f"2000-01-01T00:00:00{_offset(m[2])}").utcoffset()
    except ValueError:
        return None
    seconds = parsed.hour * 3600 + parsed.minute * 60 + parsed.second + parsed.microsecond / 1e6
    return (seconds - (shift.total_seconds() if shift else 0.0)) % 86400


def _parse_number(text: str) -> int | float:
    if "." in text or "e" in text or "E" in text:
        return float(text)
    try:
        return int(text)
    except ValueError:  # more digits than int() accepts from text
        return float(text)


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or unicodedata.category(ch) in ("Mn", "Mc")


# ------------------------------------------------------------------------------------ parser

class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    # -- helpers
    def fail(self, expected: str, pos: int | None = None) -> Problem:
        at = self.pos if pos is None else pos
        found = (f"found {self.text[at]!r}" if at < len(self.text)
                 else "reached the end of the query")
        return BadRequestData(f"Invalid q: expected {expected} at position {at}, {found}")

    def error(self, message: str, pos: int) -> Problem:
        return BadRequestData(f"Invalid q: {message} at position {pos}")

    def peek(self, k: int = 0) -> str:
        i = self.pos + k
        return self.text[i] if i < len(self.text) else ""

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    # -- logical structure
    def parse(self) -> QNode:
        self.skip_ws()
        if self.pos >= len(self.text):
            raise BadRequestData("Invalid q: the query is empty")
        node = self.parse_or()
        self.skip_ws()
        if self.pos < len(self.text):
            if self.peek() == ")":
                raise self.error("unbalanced ')' without a matching '('", self.pos)
            raise self.fail("';', '|' or the end of the query")
        return node

    def parse_or(self) -> QNode:
        items = [self.parse_and()]
        while True:
            self.skip_ws()
            if self.peek() != "|":
                break
            self.pos += 1
            items.append(self.parse_and())
        return _join(Or, items)

    def parse_and(self) -> QNode:
        items = [self.parse_unary()]
        while True:
            self.skip_ws()
            if self.peek() != ";":
                break
            self.pos += 1
            items.append(self.parse_unary())
        return _join(And, items)

    def parse_unary(self) -> QNode:
        self.skip_ws()
        ch = self.peek()
        if ch == "(":
            start = self.pos
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(f"parentheses nested deeper than {MAX_DEPTH} levels", start)
            self.pos += 1
            node = self.parse_or()
            self.skip_ws()
            if self.peek() != ")":
                raise self.fail(
                    f"';', '|' or ')' (closing the parenthesis opened at character {start})")
            self.pos += 1
            self.depth -= 1
            return node
        if ch == "!":
            self.pos += 1
            self.skip_ws()
            if not self.peek() or not (self.peek().isalpha() or self.peek() == "_"):
                raise self.fail("an attribute name after '!'")
            path = self.parse_path()
            self.skip_ws()
            if self.text.startswith(_OPERATORS, self.pos):
                raise self.error(
                    "'!' only tests that an attribute does not exist and cannot be followed by "
                    "an operator", self.pos)
            return Not(Exists(path))
        return self.parse_term()

    def parse_term(self) -> QNode:
        path = self.parse_path()
        self.skip_ws()
        op = next((o for o in _OPERATORS if self.text.startswith(o, self.pos)), None)
        if op is None:
            if self.peek() == "=":
                raise self.fail("an operator ('==', '!=', '>=', '>', '<=', '<', '~=', '!~=')")
            return Exists(path)
        self.pos += len(op)
        self.skip_ws()
        if op in PATTERN_OPS:
            return Comparison(path, op, self.parse_pattern(op))
        return Comparison(path, op, self.parse_value(op))

    # -- attribute paths
    def parse_name(self, what: str) -> str:
        start = self.pos
        ch = self.peek()
        if not ch or not (ch.isalpha() or ch == "_"):
            raise self.fail(what)
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if _is_name_char(ch) or (ch == ":" and _is_name_char(self.peek(1) or " ")):
                self.pos += 1
            else:
                break
        return self.text[start:self.pos]

    def parse_path(self) -> AttrPath:
        attr = self.parse_name("an attribute name")
        sub: list[str] = []
        while self.peek() == "." and self.peek(1) != ".":
            if sub and sub[-1] in META_MEMBERS:
                raise self.error(f"the meta member '{sub[-1]}' must end the attribute path",
                                 self.pos)
            self.pos += 1
            sub.append(self.parse_name("a sub-attribute or meta member name after '.'"))
        if self.peek() == "{":
            raise self.error("linked-entity queries ('attr{...}') are not supported", self.pos)
        trailing: list[str] = []
        while self.peek() == "[":
            if sub and sub[-1] in META_MEMBERS:
                raise self.error(f"the meta member '{sub[-1]}' cannot have a trailing path",
                                 self.pos)
            self.pos += 1
            trailing.append(self.parse_key())
            while self.peek() == ".":
                self.pos += 1
                trailing.append(self.parse_key())
            if self.peek() != "]":
                raise self.fail("'.' or ']' in the trailing path")
            self.pos += 1
        return AttrPath(attr, tuple(sub), tuple(trailing))

    def parse_key(self) -> str:
        start = self.pos
        while (self.pos < len(self.text) and self.text[self.pos] not in _KEY_FORBIDDEN
               and not self.text[self.pos].isspace()):
            self.pos += 1
        if self.pos == start:
            raise self.fail("a member name in the trailing path")
        return self.text[start:self.pos]

    # -- values
    def parse_pattern(self, op: str) -> Literal:
        start = self.pos
        if self.peek() == '"':
            self.pos += 1
            out: list[str] = []
            while True:
                ch = self.peek()
                if not ch:
                    raise self.error("unterminated quoted pattern", start)
                self.pos += 1
                if ch == '"':
                    break
                if ch == "\\" and self.peek() == '"':
                    out.append('"')
                    self.pos += 1
                elif ch == "\\" and self.peek():
                    out.append(ch + self.peek())
                    self.pos += 1
                else:
                    out.append(ch)
            pattern = "".join(out)
        else:
            pattern = self.scan_pattern()
        if not pattern:
            raise self.fail(f"a regular expression after '{op}'", start)
        if len(pattern) > MAX_PATTERN:
            raise self.error(f"the pattern is longer than {MAX_PATTERN} characters", start)
        try:
            compile_user_pattern(pattern, "the regular expression")   # RE2: linear-time matching
        except UserPatternError as exc:
            raise self.error(f"invalid regular expression {pattern!r}: {exc}", start) from None
        return Literal("pattern", pattern, self.text[start:self.pos])

    def scan_pattern(self) -> str:
        """An unquoted pattern: up to ``;``, ``|`` or ``)`` outside its own groups/classes."""
        start, depth, in_class = self.pos, 0, False
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\":
                self.pos += 2
                continue
            if in_class:
                in_class = ch != "]"
            elif ch == "[":
                in_class = True
                if self.peek(1) == "]":  # "[]...]": a leading "]" is literal
                    self.pos += 1
            elif ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            elif ch in ";|" and depth == 0:
                break
            self.pos += 1
        self.pos = min(self.pos, len(self.text))
        return self.text[start:self.pos].rstrip()

    def parse_value(self, op: str) -> QValue:
        start = self.pos
        items: list[Literal | Range] = [self.parse_item(op)]
        while True:
            save = self.pos
            self.skip_ws()
            if self.peek() != ",":
                self.pos = save
                break
            if op not in ("==", "!="):
                raise self.error(f"a value list is only allowed after '==' or '!=', not '{op}'",
                                 self.pos)
            self.pos += 1
            self.skip_ws()
            items.append(self.parse_item(op))
        if len(items) == 1:
            return items[0]
        if any(isinstance(item, Range) for item in items):
            raise self.error("a range cannot be part of a value list", start)
        return ValueList(tuple(item for item in items if isinstance(item, Literal)))

    def parse_item(self, op: str) -> Literal | Range:
        start = self.pos
        if self.peek() == '"':
            low = self.parse_quoted()
            if self.text.startswith("..", self.pos):
                self.pos += 2
                return self.make_range(low, self.parse_bound(), start, op)
            return self.check_single(low, op, start)
        token = self.scan_token()
        if not token:
            raise self.fail(f"a value after '{op}'")
        if ".." in token:
            left, right = token.split("..", 1)
            low = self.classify(left, start)
            if low.kind in COMPARABLE_KINDS:
                if right:
                    high = self.classify(right, start + len(left) + 2)
                elif self.peek() == '"':
                    high = self.parse_quoted()
                else:
                    raise self.fail("the upper bound of the range")
                return self.make_range(low, high, start, op)
        return self.check_single(self.classify(token, start), op, start)

    def parse_bound(self) -> Literal:
        start = self.pos
        if self.peek() == '"':
            return self.parse_quoted()
        token = self.scan_token()
        if not token:
            raise self.fail("the upper bound of the range")
        return self.classify(token, start)

    def make_range(self, low: Literal, high: Literal, start: int, op: str) -> Range:
        if op not in ("==", "!="):
            raise self.error(f"a range is only allowed after '==' or '!=', not '{op}'", start)
        if low.kind not in COMPARABLE_KINDS or high.kind not in COMPARABLE_KINDS:
            raise self.error("range bounds must be numbers, quoted strings, dates, times or "
                             "date-times", start)
        if low.kind != high.kind:
            raise self.error(f"range bounds have different types ({low.kind} and {high.kind})",
                             start)
        return Range(low, high)

    def check_single(self, lit: Literal, op: str, start: int) -> Literal:
        if op not in ("==", "!=") and lit.kind not in COMPARABLE_KINDS:
            raise self.error(f"'{op}' needs a number, a quoted string, a date, a time or a "
                             f"date-time, not {lit.kind} {lit.raw!r}", start)
        return lit

    def scan_token(self) -> str:
        """An unquoted value, up to whitespace, ``;``, ``|``, ``)``, ``,`` or a quote."""
        start = self.pos
        while (self.pos < len(self.text) and self.text[self.pos] not in _STOP
               and not self.text[self.pos].isspace()):
            self.pos += 1
        token = self.text[start:self.pos]
        # "...T09:00:00 09:00": the "+" of the offset became a space in form decoding
        m = _DATETIME.fullmatch(token) if self.peek() == " " else None
        if m is not None and m[3] is None:
            end = self.pos + 1
            while (end < len(self.text) and self.text[end] not in _STOP
                   and not self.text[end].isspace()):
                end += 1
            if _SPACED_OFFSET.fullmatch(self.text[self.pos + 1:end]):
                token = f"{token}+{self.text[self.pos + 1:end]}"
                self.pos = end
        return token

    def parse_quoted(self) -> Literal:
        start = self.pos
        self.pos += 1  # opening quote
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise self.error("unterminated quoted string starting", start)
            self.pos += 1
            if ch == '"':
                break
            if ch != "\\":
                out.append(ch)
                continue
            esc = self.peek()
            if esc == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", self.text[self.pos + 1:self.pos + 5]):
                out.append(chr(int(self.text[self.pos + 1:self.pos + 5], 16)))
                self.pos += 5
            elif esc in _JSON_ESCAPES:
                out.append(_JSON_ESCAPES[esc])
                self.pos += 1
            else:  # not a JSON escape: keep the backslash
                out.append("\\")
        text = "".join(out)
        return Literal("string", text, self.text[start:self.pos])

    def classify(self, token: str, pos: int) -> Literal:
        if not token:
            raise self.fail("a value", pos)
        if token in ("true", "false"):
            return Literal("boolean", token == "true", token)
        if _NUMBER.fullmatch(token):
            return Literal("number", _parse_number(token), token)
        if _DATETIME.fullmatch(token):
            instant = parse_datetime(token)
            if instant is None:
                raise self.error(f"invalid date-time {token!r}", pos)
            return Literal("datetime", instant, token)
        if _DATE.fullmatch(token):
            day = parse_date(token)
            if day is None:
                raise self.error(f"invalid date {token!r}", pos)
            return Literal("date", day, token)
        if _TIME.fullmatch(token):
            seconds = parse_time(token)
            if seconds is None:
                raise self.error(f"invalid time {token!r}", pos)
            return Literal("time", seconds, token)
        if token[0].isalpha():
            return Literal("uri", token, token)
        raise self.error(f"invalid value {token!r}: expected a number, a quoted string, "
                         "true/false, a date, a time, a date-time or a URI", pos)


def _join(cls: type[And | Or], items: list[QNode]) -> QNode:
    if len(items) == 1:
        return items[0]
    flat: list[QNode] = []
    for item in items:
        flat.extend(item.items if isinstance(item, cls) else (item,))
    return cls(tuple(flat))


def parse_q(text: str) -> QNode:
    """Parse an (already URL-decoded) ``q`` string; raise :class:`BadRequestData` on any error."""
    if not isinstance(text, str):
        raise BadRequestData("Invalid q: the query must be a string")
    try:
        return _Parser(text).parse()
    except Problem:
        raise
    except Exception as exc:  # a safety net: any input must end in a 400, never a 500
        raise BadRequestData(f"Invalid q: the query could not be parsed ({type(exc).__name__})"
                             ) from exc
