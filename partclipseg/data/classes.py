"""Class vocabularies of part datasets: object-specific part classes in dataset order, object classes, and the
seen/unseen split (the official lists, docs/training.md).

A class is a :class:`~partclipseg.queries.PartQuery` (object + part). The official name "cat's head" is written
``cat/head`` here. Unseen objects are held out of training: all their classes are unseen, and during training
their pixels count as background (docs/model.md, "Training losses").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..queries import PartQuery


@dataclass(frozen=True)
class ClassSet:
    """The classes of one dataset (evaluation vocabulary) and its seen/unseen split."""

    name: str
    classes: tuple[PartQuery, ...]  # T object-specific part classes, in dataset order (= label ids)
    objects: tuple[str, ...]  # object classes of the object maps (label ids); may include objects without parts
    unseen: frozenset[str] = frozenset()  # objects held out of training

    def __post_init__(self) -> None:
        if not self.classes:
            raise ValueError(f"{self.name}: no classes")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"{self.name}: duplicate classes")
        missing = sorted({c.object for c in self.classes} - set(self.objects))
        if missing:
            raise ValueError(f"{self.name}: classes name objects that are not in the object list: {missing}")
        unknown = sorted(self.unseen - set(self.objects))
        if unknown:
            raise ValueError(f"{self.name}: unseen objects {unknown} are not among the objects {list(self.objects)}")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def is_seen(self, index: int) -> bool:
        return self.classes[index].object not in self.unseen

    @property
    def seen(self) -> tuple[PartQuery, ...]:
        """The training vocabulary: classes of seen objects, in dataset order."""
        return tuple(c for c in self.classes if c.object not in self.unseen)


def _grouped(groups: Iterable[tuple[str, str]]) -> tuple[PartQuery, ...]:
    """("obj", "part, part, ...") groups -> classes in that order."""
    return tuple(PartQuery(part.strip(), obj) for obj, parts in groups for part in parts.split(","))


_ANIMAL = "tail, head, eye, torso, neck, leg"
_VEHICLE = "wheel, headlight, front, side, back, roof, mirror, license plate, door, window"

PASCAL_PART_116 = ClassSet(
    name="pascal-part-116",
    classes=_grouped([
        ("aeroplane", "body, stern, wing, tail, engine, wheel"),
        ("bicycle", "wheel, saddle, handlebar, chainwheel, headlight"),
        ("bird", "wing, tail, head, eye, beak, torso, neck, leg, foot"),
        ("bottle", "body, cap"),
        ("bus", _VEHICLE),
        ("car", _VEHICLE),
        ("cat", _ANIMAL + ", nose, paw, ear"),
        ("cow", _ANIMAL + ", ear, muzzle, horn"),
        ("dog", _ANIMAL + ", nose, paw, ear, muzzle"),
        ("horse", _ANIMAL + ", ear, muzzle, hoof"),
        ("motorbike", "wheel, saddle, handlebar, headlight"),
        ("person", "head, eye, torso, neck, leg, foot, nose, ear, eyebrow, mouth, hair, lower arm, upper arm, hand"),
        ("pottedplant", "pot, plant"),
        ("sheep", _ANIMAL + ", ear, muzzle, horn"),
        ("train", "headlight, head, front, side, back, roof, coach"),
        ("tvmonitor", "screen"),
    ]),
    objects=("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
             "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"),
    unseen=frozenset({"bird", "car", "dog", "sheep", "motorbike"}),
)

_VEHICLE_ADE = "bumper, door, headlight, license plate, logo, mirror, wheel, window"
_ADE_CLASSES = _grouped([
    ("person", "arm, back, foot, gaze, hand, head, leg, neck, torso"),
    ("door", "door frame, handle, knob, panel"),
    ("clock", "face, frame"),
    ("toilet", "bowl, cistern, lid"),
    ("cabinet", "door, drawer, front, shelf, side, skirt, top"),
    ("sink", "bowl, faucet, pedestal, tap, top"),
    ("lamp", "arm, base, canopy, column, cord, highlight, light source, shade, tube"),
    ("sconce", "arm, backplate, highlight, light source, shade"),
    ("chair", "apron, arm, back, base, leg, seat, seat cushion, skirt, stretcher"),
    ("chest of drawers", "apron, door, drawer, front, leg"),
    ("chandelier", "arm, bulb, canopy, chain, cord, highlight, light source, shade"),
    ("bed", "footboard, headboard, leg, side rail"),
    ("table", "apron, drawer, leg, shelf, top, wheel"),
    ("armchair", "apron, arm, back, back pillow, leg, seat, seat base, seat cushion"),
    ("ottoman", "back, leg, seat"),
    ("shelf", "door, drawer, front, shelf"),
    ("swivel chair", "back, base, seat, wheel"),
    ("fan", "blade, canopy, tube"),
    ("coffee table", "leg, top"),
    ("stool", "leg, seat"),
    ("sofa", "arm, back, back pillow, leg, seat base, seat cushion, skirt"),
    ("computer", "computer case, keyboard, monitor, mouse"),
    ("desk", "apron, door, drawer, leg, shelf, top"),
    ("wardrobe", "door, drawer, front, leg, mirror, top"),
    ("car", "bumper, door, headlight, hood, license plate, logo, mirror, wheel, window, wiper"),
    ("bus", _VEHICLE_ADE + ", wiper"),
    ("oven", "button panel, door, drawer, top"),
    ("cooking stove", "burner, button panel, door, drawer, oven, stove"),
    ("microwave", "button panel, door, front, side, top, window"),
    ("refrigerator", "button panel, door, drawer, side"),
    ("kitchen island", "door, drawer, front, side, top"),
    ("dishwasher", "button panel, handle, skirt"),
    ("bookcase", "door, drawer, front, side"),
    ("television receiver", "base, buttons, frame, keys, screen, speaker"),
    ("glass", "base, bowl, opening, stem"),
    ("pool table", "bed, leg, pocket"),
    ("van", "bumper, door, headlight, license plate, logo, mirror, taillight, wheel, window, wiper"),
    ("airplane", "door, fuselage, landing gear, propeller, stabilizer, turbine engine, wing"),
    ("truck", _VEHICLE_ADE),
    ("minibike", "license plate, mirror, seat, wheel"),
    ("washer", "button panel, door, front, side"),
    ("bench", "arm, back, leg, seat"),
    ("traffic light", "housing, pole"),
    ("light", "aperture, canopy, diffusor, highlight, light source, shade"),
])

ADE20K_PART_234 = ClassSet(
    name="ade20k-part-234",
    classes=_ADE_CLASSES,
    objects=tuple(sorted({c.object for c in _ADE_CLASSES})),
    unseen=frozenset({"bench", "bus", "fan", "desk", "stool", "truck", "van", "swivel chair", "oven", "ottoman",
                      "kitchen island"}),
)
