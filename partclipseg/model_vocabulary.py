"""What a model knows: an **open** vocabulary (a CLIP text tower: the official PartCLIPSeg and CLIPSeg weights, and
models fine-tuned from them) or a **closed** one (trained here from scratch: only the classes it lists), and which
queries a closed model was never trained on. docs/model.md, "Open and closed vocabulary", says how checkpoints are
marked and how files without the mark are read.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from .queries import PartQuery

OPEN, CLOSED = "open", "closed"
KINDS = (OPEN, CLOSED)


def unknown_queries(queries: Iterable[PartQuery], vocabulary: str | None,
                    classes: Sequence[PartQuery]) -> tuple[PartQuery, ...]:
    """The ``queries`` a closed-vocabulary model trained on ``classes`` never learned (none for other models).

    ``object/part`` is known when it is one of the classes; a bare part when some class has that part.
    """
    if vocabulary != CLOSED:
        return ()
    pairs = {(c.object, c.part) for c in classes}
    parts = {c.part for c in classes}
    return tuple(q for q in queries if ((q.object, q.part) not in pairs if q.object else q.part not in parts))


def describe(vocabulary: str | None, classes: Sequence[PartQuery]) -> str:
    """One line: what the model's vocabulary is."""
    if vocabulary == CLOSED:
        return f"closed vocabulary, {len(classes)} classes: {', '.join(c.name for c in classes)}"
    if vocabulary == OPEN:
        return "open vocabulary"
    return "vocabulary not stated (random weights)"


def unknown_warning(unknown: Sequence[PartQuery], classes: Sequence[PartQuery]) -> str:
    """The warning for a query set with ``unknown`` queries (callers add what they withhold)."""
    names = ", ".join(q.name + (f" (from {q.affordance})" if q.affordance else "") for q in unknown)
    return (f"the model has a closed vocabulary and was never trained on {names}: "
            f"{'its mask is a guess' if len(unknown) == 1 else 'their masks are guesses'} (it knows "
            f"{', '.join(c.name for c in classes) or 'no classes'})")
