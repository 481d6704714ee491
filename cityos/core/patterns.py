"""User-supplied regular expressions, matched in linear time.

Patterns such as ``idPattern`` come from clients and are then run against every entity id a
request (or every notification) looks at.  Python's backtracking ``re`` takes exponential time on
patterns like ``(a+)+$``, which would block the event loop for minutes, so every such pattern is
compiled with RE2 (``google-re2``), whose matching time is linear in the subject.  What RE2 cannot
compile (look-arounds, back references) is refused with :class:`UserPatternError`; each API face
turns that into its own 400 body.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

MAX_PATTERN_CHARS = 256
"""The longest pattern accepted (RE2 programs grow with the pattern)."""

MAX_SUBJECT_CHARS = 4096
"""Subjects longer than this never match (entity ids are at most 2048 characters)."""

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False      # a refused pattern is the client's error, not a log line
_OPTIONS.max_mem = 8 << 20       # bounds the DFA cache per pattern


class UserPatternError(ValueError):
    """A user-supplied pattern that is too long or not in the supported (RE2) syntax."""


class UserPattern:
    """A compiled user pattern: :meth:`search` mirrors ``re.Pattern.search`` in linear time."""

    __slots__ = ("_regexp", "text")

    def __init__(self, text: str, regexp: Any) -> None:
        self.text = text
        self._regexp = regexp

    def search(self, subject: str) -> Any:
        """A match object when the pattern occurs in ``subject``, else None."""
        if len(subject) > MAX_SUBJECT_CHARS:
            return None
        return self._regexp.search(subject)


def compile_user_pattern(text: str, what: str) -> UserPattern:
    """Compile ``text`` (named ``what`` in errors) or raise :class:`UserPatternError`.

    Compiled patterns are cached, so a pattern repeated on every request is compiled once.
    """
    if not isinstance(text, str):
        raise UserPatternError(f"{what} must be a string")
    if len(text) > MAX_PATTERN_CHARS:
        raise UserPatternError(f"{what} is longer than {MAX_PATTERN_CHARS} characters")
    return _compile(text, what)


@lru_cache(maxsize=1024)
def _compile(text: str, what: str) -> UserPattern:
    try:
        return UserPattern(text, re2.compile(text, options=_OPTIONS))
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and \
            isinstance(exc.args[0], bytes) else str(exc)
        raise UserPatternError(f"{what} is not a supported regular expression ({reason}); "
                               "look-arounds and back references are not allowed") from None


class _NeverMatches(UserPattern):
    """Stands for a stored pattern RE2 refuses (e.g. one saved before RE2 was used)."""

    def search(self, subject: str) -> Any:
        """Never a match."""
        return None


def stored_user_pattern(text: str) -> UserPattern:
    """The compiled (cached) form of a pattern validated when it was received.

    No length check: internal rewrites of a client's text (NGSI v2 adds the stored id prefix to
    every ``^``) may be somewhat longer.  A pattern RE2 refuses matches nothing, never everything.
    """
    try:
        return _compile(text, "pattern")
    except UserPatternError:
        return _NeverMatches(text, None)


def user_pattern_search(text: str, subject: str) -> bool:
    """Whether the validated pattern ``text`` occurs in ``subject`` (False if RE2 refuses it)."""
    return stored_user_pattern(text).search(subject) is not None
