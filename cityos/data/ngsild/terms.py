"""Term maps: the part of JSON-LD context processing the broker needs on its hot path.

NGSI-LD only ever expands and compacts *names* (attribute names, entity types, vocab values), never
whole documents, so a context is reduced once to a dictionary ``term -> IRI`` plus ``@vocab`` and
cached.  This is much faster than running a full JSON-LD processor per request, and it is all the
broker needs: values of properties are never expanded (ETSI GS CIM 009 clause 5.5.7).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from cityos.core.problems import InvalidRequest

_ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
KEYWORD_ALIASES = frozenset({"@id", "@type"})


class TermMap:
    """Expands and compacts names for one effective ``@context``."""

    __slots__ = ("_compact_cache", "_expand_cache", "_reverse", "terms", "vocab")

    def __init__(self, terms: dict[str, str], vocab: str | None) -> None:
        self.terms = terms
        self.vocab = vocab
        reverse: dict[str, str] = {}
        # Later definitions and shorter terms win, so ``temperature`` beats ``schema:temperature``.
        for term, iri in terms.items():
            current = reverse.get(iri)
            if current is None or len(term) <= len(current):
                reverse[iri] = term
        self._reverse = reverse
        self._expand_cache: dict[str, str] = {}
        self._compact_cache: dict[str, str] = {}

    def expand(self, name: str) -> str:
        """The IRI that ``name`` stands for in this context."""
        cached = self._expand_cache.get(name)
        if cached is not None:
            return cached
        iri = self._expand(name)
        if len(self._expand_cache) < 100_000:
            self._expand_cache[name] = iri
        return iri

    def _expand(self, name: str) -> str:
        iri = self.terms.get(name)
        if iri is not None:
            return iri
        if ":" in name:
            prefix, _, suffix = name.partition(":")
            if not suffix.startswith("//"):
                base = self.terms.get(prefix)
                if base is not None:
                    return base + suffix
            if _ABSOLUTE_IRI.match(name):
                return name
        if self.vocab is not None:
            return self.vocab + name
        return name

    def compact(self, iri: str) -> str:
        """The shortest name for ``iri`` in this context (the IRI itself if none)."""
        cached = self._compact_cache.get(iri)
        if cached is not None:
            return cached
        name = self._compact(iri)
        if len(self._compact_cache) < 100_000:
            self._compact_cache[iri] = name
        return name

    def _compact(self, iri: str) -> str:
        term = self._reverse.get(iri)
        if term is not None:
            return term
        if self.vocab and iri.startswith(self.vocab) and len(iri) > len(self.vocab):
            suffix = iri[len(self.vocab):]
            if suffix not in self.terms and ":" not in suffix:
                return suffix
        best: str | None = None
        for prefix, base in self.terms.items():
            if base.endswith(("/", "#")) and iri.startswith(base) and len(iri) > len(base):
                candidate = f"{prefix}:{iri[len(base):]}"
                if best is None or len(candidate) < len(best):
                    best = candidate
        return best or iri


def build_term_map(local_contexts: Iterable[dict[str, Any]], core: dict[str, Any]) -> TermMap:
    """Merge resolved context objects (in order) with the core context, which always wins.

    ``local_contexts`` are the ``@context`` *objects* after remote URLs were resolved; the core
    context's terms are protected (clause 5.5.7), so user contexts cannot redefine them.
    """
    raw: dict[str, Any] = {}
    vocab: str | None = None
    for ctx in local_contexts:
        if not isinstance(ctx, dict):
            raise InvalidRequest("@context entries must be JSON objects or URL strings")
        for key, value in ctx.items():
            if key == "@vocab":
                vocab = value if isinstance(value, str) else None
            elif not key.startswith("@"):
                raw[key] = value
    core_raw = {k: v for k, v in core.items() if not k.startswith("@")}
    terms = _resolve_terms({**raw, **core_raw})
    if vocab is None:
        vocab = core.get("@vocab")
    elif ":" in vocab and not _ABSOLUTE_IRI.match(vocab.split(":", 1)[0] + "://"):
        prefix, _, suffix = vocab.partition(":")
        vocab = terms.get(prefix, prefix + ":") + suffix if prefix in terms else vocab
    return TermMap(terms, vocab)


def _resolve_terms(raw: dict[str, Any]) -> dict[str, str]:
    """Turn term definitions into absolute IRIs, following compact IRIs like ``schema:name``."""
    resolved: dict[str, str] = {}

    def target(value: Any) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            iri = value.get("@id")
            return iri if isinstance(iri, str) else None
        return None

    def absolute(term: str, seen: frozenset[str]) -> str | None:
        if term in resolved:
            return resolved[term]
        iri = target(raw.get(term))
        if iri is None:
            return None
        if iri in KEYWORD_ALIASES or iri.startswith("@"):
            return None
        if ":" in iri:
            prefix, _, suffix = iri.partition(":")
            if not suffix.startswith("//") and prefix in raw and prefix not in seen:
                base = absolute(prefix, seen | {prefix})
                if base is not None:
                    return base + suffix
        return iri

    for term in raw:
        iri = absolute(term, frozenset({term}))
        if iri is not None:
            resolved[term] = iri
    return resolved


@lru_cache(maxsize=1)
def core_only() -> TermMap:
    """The term map of the NGSI-LD core context alone (no user context given)."""
    from cityos.data.ngsild.context import core_context_object

    return build_term_map([], core_context_object())
