"""Part queries: the one parser used by the library, the CLI and the ROS node (README, "Queries": the grammar, the
affordance requests and the limits)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Iterable, Sequence

from .errors import QueryError
from .defaults import MAX_QUERIES, MAX_QUERY_CHARS, MAX_QUERY_STRING_CHARS

if TYPE_CHECKING:
    from .affordances import AffordanceVocabulary

_SEPARATORS = re.compile(r"[;,]")
_WORD = re.compile(r"^[\w][\w '&.\-]*$")
_ARTICLES = ("the", "a", "an")
_POSSESSIVE = re.compile(r"'s(?: |$)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # control characters other than tab and newline (spaces)



@dataclass(frozen=True)
class PartQuery:
    """One part query: a part name, optionally of a named object, and what a robot does with the part.

    ``affordance`` is a label, not part of the query's identity: queries compare by part and object.
    """

    part: str
    object: str | None = None
    affordance: str | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """Canonical ``object/part`` (or the bare part)."""
        return f"{self.object}/{self.part}" if self.object else self.part

    @property
    def phrase(self) -> str:
        """The prompt plain CLIPSeg gets: the object-specific name without ``'s`` ("cat head")."""
        return f"{self.object} {self.part}" if self.object else self.part

    def __str__(self) -> str:
        return self.name


def normalise(text: str) -> str:
    """Lower case, straight apostrophes, single spaces, no spaces around ``/``."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").lower()
    text = " ".join(text.split())
    return re.sub(r"\s*/\s*", "/", text)


def _check_name(name: str, what: str, query: str) -> str:
    if not name:
        raise QueryError(f"query {query!r}: the {what} is empty (write it as 'object/part', e.g. 'pot/handle')")
    if not _WORD.match(name):
        hint = (" ':' marks an affordance request such as 'grasp:knife', which needs an affordance vocabulary."
                if ":" in name else "")
        raise QueryError(
            f"query {query!r}: the {what} {name!r} has characters other than letters, digits, spaces, "
            f"and ' & . - (write it as 'object/part', e.g. 'pot/handle').{hint}"
        )
    return name


def check_text(text: object) -> str:
    """``text`` if it is a string without control characters, else QueryError saying why (also for tools that hand
    a query to ROS, whose strings end at the first NUL)."""
    if not isinstance(text, str):
        raise QueryError(f"a query must be a string, got {type(text).__name__}")
    control = _CONTROL.search(text)
    if control:
        nul = (" ROS strings end at the first NUL, so over a topic or service this query would arrive cut short "
               f"as {text[:control.start()]!r}." if control.group() == "\x00" else "")
        raise QueryError(f"query {text[:40]!r} holds the control character {control.group()!r} at position "
                         f"{control.start()}: write only letters, digits, spaces and ' & . - / ; , :.{nul}")
    return text


def _without_article(words: list[str]) -> list[str]:
    return words[1:] if words and words[0] in _ARTICLES else words


def parse_query(text: str) -> PartQuery:
    """Parse one query (no separators) into a :class:`PartQuery`."""
    query = normalise(check_text(text))
    if not query:
        raise QueryError("empty query: give a part such as 'handle' or 'pot/handle'")
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"query {query[:40]!r}... is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}")
    if "/" in query:
        pieces = query.split("/")
        if len(pieces) != 2:
            raise QueryError(f"query {query!r}: use one '/' between object and part, e.g. 'pot/handle'")
        obj, part = pieces
    elif _POSSESSIVE.search(query):
        obj, part = (" ".join(_without_article(s.split())) for s in _POSSESSIVE.split(query, 1))
    elif "of" in query.split(" "):
        words = query.split(" ")
        at = words.index("of")
        part, obj = " ".join(_without_article(words[:at])), " ".join(_without_article(words[at + 1:]))
    else:
        words = query.split(" ")
        obj, part = " ".join(words[:-1]), words[-1]
        if not obj:
            return PartQuery(part=_check_name(part, "part", query))
    return PartQuery(part=_check_name(part, "part", query), object=_check_name(obj, "object", query))


def parse_request(text: str, affordances: "AffordanceVocabulary") -> list[PartQuery] | None:
    """The queries an affordance request ("grasp:knife", "grasp:", "grasp") asks for; None if ``text`` is none."""
    query = normalise(check_text(text))
    if ":" in query:
        affordance, _, obj = (s.strip() for s in query.partition(":"))
    elif query in affordances.names:
        affordance, obj = query, ""
    else:
        return None
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"query {query[:40]!r}... is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}")
    if affordance not in affordances.names:
        known = ", ".join(affordances.names) or "none"
        raise QueryError(f"query {query!r}: unknown affordance {affordance!r} (the vocabulary has: {known})")
    obj = _check_name(obj, "object", query) if obj else None
    try:
        parts = affordances.request(affordance, obj)
    except KeyError as error:
        raise QueryError(f"query {query!r}: {error.args[0]}") from None
    return [PartQuery(part=part, object=obj, affordance=affordance) for part in parts]


def parse_queries(spec: str | Iterable[str | PartQuery], max_queries: int = MAX_QUERIES,
                  affordances: "AffordanceVocabulary | None" = None) -> list[PartQuery]:
    """Parse one string or a list of strings (each may hold several queries) into unique queries, in order.

    With ``affordances`` (an :class:`~partclipseg.affordances.AffordanceVocabulary`), affordance requests are
    expanded and every query carries its affordance.
    """
    items = [spec] if isinstance(spec, (str, PartQuery)) else list(spec)
    queries: list[PartQuery] = []
    for item in items:
        if isinstance(item, PartQuery):
            pieces: Sequence[str | PartQuery] = [item]
        elif isinstance(item, str):
            check_text(item)
            if len(item) > MAX_QUERY_STRING_CHARS:
                raise QueryError(
                    f"query string is {len(item)} characters long; the limit is {MAX_QUERY_STRING_CHARS}"
                )
            pieces = [p for p in _SEPARATORS.split(item) if p.strip()]
        else:
            raise QueryError(f"a query must be a string, got {type(item).__name__}")
        for piece in pieces:
            found = parse_request(piece, affordances) if affordances is not None and isinstance(piece, str) else None
            if found is None:
                found = [piece if isinstance(piece, PartQuery) else parse_query(piece)]
            for query in found:
                if affordances is not None and query.affordance is None:
                    query = replace(query, affordance=affordances.affordance_of(query.part, query.object))
                if query not in queries:
                    queries.append(query)
    if not queries:
        raise QueryError("no query given: publish e.g. 'pot/handle' or 'knife handle; mug/handle'")
    if len(queries) > max_queries:
        raise QueryError(f"{len(queries)} queries given; at most {max_queries} are served at once")
    return queries


def parse_objects(spec: str | Iterable[str]) -> list[str]:
    """The object names of ``mode="oracle"``: one string ("pot; knife", "pot, knife") or several, normalised as
    queries are, without duplicates, in order (the CLI's --objects and the node's ``objects`` alike)."""
    items = [spec] if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in items:
        for piece in _SEPARATORS.split(check_text(item)):
            name = normalise(piece)
            if name and name not in names:
                names.append(_check_name(name, "object", piece))
    return names


@dataclass(frozen=True)
class Vocabulary:
    """The prompt vocabulary as the official code builds it: sorted unique parts, then sorted unique objects."""

    parts: tuple[str, ...]
    objects: tuple[str, ...]

    @classmethod
    def from_queries(cls, queries: Iterable[PartQuery], anchor: Iterable[PartQuery] = ()) -> "Vocabulary":
        """The vocabulary of ``queries``, plus that of ``anchor`` (a model's training classes: with it, a query
        set's prompts and indices are those the model was trained with, see :class:`PromptPlan`)."""
        queries = list(queries) + list(anchor)
        return cls(
            parts=tuple(sorted({q.part for q in queries})),
            objects=tuple(sorted({q.object for q in queries if q.object is not None})),
        )

    @property
    def prompts(self) -> tuple[str, ...]:
        """Text prompts in decoder order (the background embedding follows them)."""
        return self.parts + self.objects
