"""Recording the expansions a subscription was parsed with.

A subscription is written once under the caller's ``@context`` and read back for years: at every
start-up, and under whatever ``@context`` a later PATCH or GET uses.  Rather than fetching the
original (maybe remote, maybe gone) context again, the parser records every ``term -> IRI`` it
expanded, per top-level member; a :class:`TermMap` built from that record reproduces the exact
same expansion offline.
"""

from __future__ import annotations

from cityos.data.ngsild.terms import TermMap


class RecordingTermMap(TermMap):
    """A :class:`TermMap` that remembers what it expanded.

    It shares the tables of the map it wraps (no copy, no rebuilt reverse index: parsing a
    subscription must stay cheap), so only :meth:`expand` differs.
    """

    __slots__ = ("recorded",)

    def __init__(self, inner: TermMap) -> None:
        # deliberately not calling TermMap.__init__: it would rebuild the reverse index
        self.terms = inner.terms
        self.vocab = inner.vocab
        self._reverse = inner._reverse
        self._expand_cache = inner._expand_cache
        self._compact_cache = inner._compact_cache
        self.recorded: dict[str, str] = {}

    def expand(self, name: str) -> str:
        """The IRI of ``name``, remembered."""
        iri = super().expand(name)
        self.recorded[name] = iri
        return iri


def replay(recorded: dict[str, str]) -> TermMap:
    """A term map that expands exactly the recorded names as they were expanded.

    No ``@vocab``: every name the member used is in the record, and an absolute IRI expands to
    itself anyway.
    """
    return TermMap(dict(recorded), None)
