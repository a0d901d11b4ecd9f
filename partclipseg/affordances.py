"""The affordance vocabulary: part name -> what a robot does with it (grasp, avoid, pour, open, press, ...).

The built-in table is ``partclipseg/affordances.yaml`` (its comments explain the format); load another with
:func:`load_affordances`. The query parser uses it to label queries and to expand affordance requests
(``parse_queries("grasp:knife", affordances=load_affordances())`` -> ``knife/handle``, affordance "grasp").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from .errors import AffordanceError
from .queries import QueryError, parse_query

DEFAULT_AFFORDANCES = Path(__file__).with_name("affordances.yaml")
_AFFORDANCE = re.compile(r"^[a-z][a-z0-9_\-]*$")



@dataclass(frozen=True, eq=False)
class AffordanceVocabulary:
    parts: dict[str, str]  # "handle" or "bottle/neck" -> affordance, in file order
    requests: dict[str, tuple[str, ...]]  # affordance -> parts a request asks for (objects without own entries)

    @property
    def names(self) -> tuple[str, ...]:
        """Every affordance the vocabulary knows, sorted."""
        return tuple(sorted(set(self.parts.values()) | set(self.requests)))

    def affordance_of(self, part: str, obj: str | None = None) -> str | None:
        """The affordance of ``obj``'s ``part`` (object-specific entry first), None if it has none."""
        if obj is not None and f"{obj}/{part}" in self.parts:
            return self.parts[f"{obj}/{part}"]
        return self.parts.get(part)

    def request(self, affordance: str, obj: str | None = None) -> tuple[str, ...]:
        """The parts an affordance request asks for (raises KeyError with a message if there are none).

        Of an object: its object-specific parts with that affordance, else ``requests[affordance]``. Bare: every
        bare part word with that affordance, else ``requests[affordance]``.
        """
        prefix = f"{obj}/" if obj is not None else None
        own = tuple(key.split("/", 1)[-1] for key, value in self.parts.items() if value == affordance
                    and (key.startswith(prefix) if prefix else "/" not in key))
        if own:
            return own
        if affordance not in self.requests:
            raise KeyError(f"the affordance vocabulary names no parts to ask for '{affordance}'"
                           f"{' of ' + repr(obj) if obj else ''} (add them under 'requests')")
        return self.requests[affordance]


def _affordance(value: object, where: str) -> str:
    if not isinstance(value, str) or not _AFFORDANCE.match(value):
        raise AffordanceError(f"{where}: an affordance must be one lower-case word (e.g. grasp), got {value!r}")
    return value


def _part_key(key: object, where: str) -> str:
    if not isinstance(key, str):
        raise AffordanceError(f"{where}: a part must be a word or 'object/part', got {key!r}")
    try:
        return parse_query(key).name
    except QueryError as error:
        raise AffordanceError(f"{where}: {error}") from None


def parse_affordances(data: object, source: str = "affordances") -> AffordanceVocabulary:
    """Build a vocabulary from the loaded YAML mapping (``parts`` and optional ``requests``)."""
    if not isinstance(data, dict) or not isinstance(data.get("parts"), dict):
        raise AffordanceError(f"{source}: expected a mapping with 'parts' (part -> affordance) and optional "
                              "'requests' (affordance -> list of parts)")
    unknown = set(data) - {"parts", "requests"}
    if unknown:
        raise AffordanceError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                              "expected 'parts' and 'requests'")
    parts: dict[str, str] = {}
    for key, value in data["parts"].items():
        name = _part_key(key, f"{source}: parts")
        if name in parts:
            raise AffordanceError(f"{source}: parts: {name!r} is listed twice")
        parts[name] = _affordance(value, f"{source}: parts: {name}")
    requests: dict[str, tuple[str, ...]] = {}
    raw_requests = data.get("requests") or {}
    if not isinstance(raw_requests, dict):
        raise AffordanceError(f"{source}: 'requests' must map an affordance to a list of parts")
    for key, value in raw_requests.items():
        affordance = _affordance(key, f"{source}: requests")
        where = f"{source}: requests: {affordance}"
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise AffordanceError(f"{where}: expected a non-empty list of part words, got {value!r}")
        words = tuple(dict.fromkeys(_part_key(v, where) for v in value))
        if any("/" in w for w in words):
            raise AffordanceError(f"{where}: list bare part words; object-specific parts go under 'parts'")
        requests[affordance] = words
    return AffordanceVocabulary(parts=parts, requests=requests)


def load_affordances(path: str | Path | None = None) -> AffordanceVocabulary:
    """The vocabulary in the YAML file ``path`` (default: the built-in one)."""
    if path is None:
        return _default()
    return _load(Path(path))


@lru_cache(maxsize=1)
def _default() -> AffordanceVocabulary:
    return _load(DEFAULT_AFFORDANCES)


def _load(path: Path) -> AffordanceVocabulary:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise AffordanceError(f"cannot read the affordance file {str(path)!r}: {error.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise AffordanceError(f"{path}: not valid YAML: {error}") from None
    return parse_affordances(data, str(path))
