"""Synthetic kitchen part dataset: procedural objects with named parts on a table, ray-cast with
:mod:`partclipseg.data.raycast`, with exact depth and intrinsics.

Each scene: a textured table top and back wall, 1-4 kitchen objects (pot, pan, mug, cup, saucer, knife, spatula,
bottle, kettle) in random poses, sizes, colours and surface patterns, 0-2 unlabelled distractor shapes, a camera
at a random distance, height and heading with a random field of view, one random directional light, blur and
sensor noise. Objects may occlude each other; a cup may stand on a saucer. Labels come from the ray caster's
primitive index (primitive -> part), shading from its normals.

``generate(out, ...)`` writes the simple folder format (see :mod:`partclipseg.data.folder`), depth as uint16
millimetres and one camera JSON per image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from ..geometry.camera import CameraIntrinsics
from ..queries import PartQuery
from .raycast import Box, Cylinder, Plane, Primitive, Sphere, render
from .classes import ClassSet
from .dataset import UNLABELLED, PartSample
from .folder import write_classes, write_sample

KITCHEN_PARTS: dict[str, tuple[str, ...]] = {
    "pot": ("body", "handle", "lid"),
    "pan": ("body", "handle"),
    "mug": ("body", "handle"),
    "cup": ("body", "handle"),
    "saucer": ("rim", "well"),
    "knife": ("blade", "handle"),
    "spatula": ("head", "handle"),
    "bottle": ("body", "cap"),
    "kettle": ("body", "handle", "lid", "spout"),
}


def kitchen_classes(unseen: Iterable[str] = (), objects: Iterable[str] | None = None) -> ClassSet:
    """The synthetic kitchen vocabulary (21 classes of 9 objects, or of ``objects`` only); ``unseen`` objects are
    held out of training."""
    names = tuple(KITCHEN_PARTS) if objects is None else tuple(o for o in KITCHEN_PARTS if o in set(objects))
    unknown = sorted(set(objects or ()) - set(KITCHEN_PARTS)) + sorted(set(unseen) - set(names))
    if unknown or not names:
        raise ValueError(f"not synthetic objects (or not generated): {unknown}; objects: {', '.join(KITCHEN_PARTS)}")
    classes = tuple(PartQuery(part, obj) for obj in names for part in KITCHEN_PARTS[obj])
    return ClassSet("synthetic-kitchen", classes, names, frozenset(unseen))


# ----------------------------------------------------------------------------------------------- object recipes
# Objects are built in their own frame (z up, standing on the table at z = 0) as (primitive, part) lists.

Parts = list[tuple[Primitive, str]]
Z = np.array([0.0, 0.0, 1.0])
X = np.array([1.0, 0.0, 0.0])


def _box(center, half) -> Box:
    return Box(center, np.eye(3), half)


def _rot_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _loop_handle(rng: np.random.Generator, radius: float, height: float, size: float) -> Parts:
    """A C-shaped side handle of three bars on the +x side of a cylinder."""
    reach, bar = size * rng.uniform(0.4, 0.6), size * rng.uniform(0.08, 0.12)
    top, bottom = height * rng.uniform(0.7, 0.85), height * rng.uniform(0.15, 0.3)
    out = radius + reach
    return [
        (_box((radius + reach / 2, 0, top), (reach / 2 + bar, bar, bar)), "handle"),
        (_box((radius + reach / 2, 0, bottom), (reach / 2 + bar, bar, bar)), "handle"),
        (_box((out, 0, (top + bottom) / 2), (bar, bar, (top - bottom) / 2 + bar)), "handle"),
    ]


def _pot(rng):
    r, h = rng.uniform(0.08, 0.12), rng.uniform(0.08, 0.14)
    parts: Parts = [(Cylinder((0, 0, h / 2), Z, r, h), "body")]
    for side in (-1, 1):
        reach = rng.uniform(0.025, 0.04)
        parts.append((_box((side * (r + reach / 2), 0, 0.85 * h), (reach / 2 + 0.005, 0.015, 0.007)), "handle"))
    if rng.random() < 0.75:
        parts.append((Cylinder((0, 0, h + 0.006), Z, r * 1.03, 0.012), "lid"))
        parts.append((Sphere((0, 0, h + 0.02), rng.uniform(0.01, 0.016)), "lid"))
    return parts, r + 0.04


def _pan(rng):
    r, h = rng.uniform(0.09, 0.13), rng.uniform(0.03, 0.05)
    length = rng.uniform(0.11, 0.16)
    tilt = rng.uniform(0.0, 0.25)
    center = np.array([r + length / 2 * math.cos(tilt), 0, h * 0.7 + length / 2 * math.sin(tilt)])
    return [
        (Cylinder((0, 0, h / 2), Z, r, h), "body"),
        (Box(center, _rot_y(-tilt), (length / 2 + 0.01, 0.012, 0.007)), "handle"),
    ], r + length


def _mug(rng, small: bool = False):
    r = rng.uniform(0.035, 0.045) if small else rng.uniform(0.035, 0.05)
    h = rng.uniform(0.045, 0.065) if small else rng.uniform(0.08, 0.11)
    parts: Parts = [(Cylinder((0, 0, h / 2), Z, r, h), "body")]
    parts += _loop_handle(rng, r, h, rng.uniform(0.05, 0.07))
    return parts, r + 0.04


def _saucer(rng):
    r = rng.uniform(0.065, 0.09)
    return [
        (Cylinder((0, 0, 0.006), Z, r, 0.012), "rim"),
        (Cylinder((0, 0, 0.0125), Z, r * rng.uniform(0.5, 0.6), 0.002), "well"),
    ], r


def _knife(rng):
    blade, handle = rng.uniform(0.07, 0.11), rng.uniform(0.045, 0.065)
    width = rng.uniform(0.011, 0.018)
    return [
        (_box((blade / 2, 0, 0.004), (blade / 2, width, 0.0015)), "blade"),
        (_box((-handle / 2, 0, 0.009), (handle / 2, 0.011, 0.008)), "handle"),
    ], blade + 0.01


def _spatula(rng):
    head, handle = rng.uniform(0.035, 0.05), rng.uniform(0.14, 0.2)
    return [
        (_box((head, 0, 0.004), (head, rng.uniform(0.028, 0.04), 0.0025)), "head"),
        (Cylinder((-handle / 2, 0, 0.009), X, rng.uniform(0.007, 0.01), handle), "handle"),
    ], handle


def _bottle(rng):
    r, h = rng.uniform(0.03, 0.045), rng.uniform(0.14, 0.22)
    neck = rng.uniform(0.03, 0.05)
    parts: Parts = [
        (Cylinder((0, 0, h / 2), Z, r, h), "body"),
        (Cylinder((0, 0, h + neck / 2), Z, r * 0.42, neck), "body"),
        (Cylinder((0, 0, h + neck + 0.01), Z, r * 0.5, 0.02), "cap"),
    ]
    return parts, r + 0.01


def _kettle(rng):
    r, h = rng.uniform(0.07, 0.09), rng.uniform(0.11, 0.15)
    spout_len = rng.uniform(0.07, 0.1)
    angle = rng.uniform(0.6, 0.9)  # from the vertical
    axis = np.array([-math.sin(angle), 0, math.cos(angle)])
    base = np.array([-r * 0.9, 0, h * 0.3])
    span = r * rng.uniform(0.5, 0.7)
    lift = rng.uniform(0.04, 0.06)
    return [
        (Cylinder((0, 0, h / 2), Z, r, h), "body"),
        (Cylinder((0, 0, h + 0.006), Z, r * 0.55, 0.012), "lid"),
        (Cylinder(base + axis * spout_len / 2, axis, rng.uniform(0.009, 0.013), spout_len), "spout"),
        (_box((0, 0, h + lift), (span + 0.008, 0.012, 0.008)), "handle"),
        (_box((-span, 0, h + lift / 2), (0.008, 0.012, lift / 2)), "handle"),
        (_box((span, 0, h + lift / 2), (0.008, 0.012, lift / 2)), "handle"),
    ], r + 0.03


RECIPES: dict[str, Callable[[np.random.Generator], tuple[Parts, float]]] = {
    "pot": _pot, "pan": _pan, "mug": _mug, "cup": lambda rng: _mug(rng, small=True), "saucer": _saucer,
    "knife": _knife, "spatula": _spatula, "bottle": _bottle, "kettle": _kettle,
}


def _place(primitive: Primitive, rotation: np.ndarray, offset: np.ndarray) -> Primitive:
    """A primitive moved by p -> rotation @ p + offset."""
    if isinstance(primitive, Cylinder):
        return Cylinder(rotation @ primitive.center + offset, rotation @ primitive.axis, primitive.radius, primitive.length)
    if isinstance(primitive, Box):
        return Box(rotation @ primitive.center + offset, rotation @ primitive.rotation, primitive.half_extents)
    if isinstance(primitive, Sphere):
        return Sphere(rotation @ primitive.center + offset, primitive.radius)
    return Plane(rotation @ primitive.point + offset, rotation @ primitive.normal)


def _yaw(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# ----------------------------------------------------------------------------------------------- scenes


@dataclass(frozen=True)
class SceneConfig:
    width: int = 320
    height: int = 240
    min_objects: int = 1
    max_objects: int = 4
    max_distractors: int = 2


@dataclass
class _Surface:
    """How a primitive looks: base colour, pattern and its parameters."""

    color: np.ndarray
    pattern: str
    second: np.ndarray
    scale: float
    direction: np.ndarray
    shininess: float


def _random_color(rng: np.random.Generator, grey: bool = False) -> np.ndarray:
    if grey:
        return np.full(3, rng.uniform(60, 220)) + rng.normal(0, 6, 3)
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(40, 256), rng.integers(70, 256)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


def _surface(rng: np.random.Generator, patterns: tuple[str, ...] = ("plain", "plain", "stripes", "checker", "noise"),
             color: np.ndarray | None = None) -> _Surface:
    base = _random_color(rng, grey=rng.random() < 0.25) if color is None else color
    direction = rng.normal(size=3)
    return _Surface(base, str(rng.choice(patterns)), _random_color(rng), rng.uniform(15, 60),
                    direction / np.linalg.norm(direction), rng.uniform(0, 0.3))


def _pattern(surface: _Surface, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 3) colours of ``surface`` at (N, 3) world points."""
    n = points.shape[0]
    if surface.pattern == "stripes":
        t = 0.5 + 0.5 * np.sin(points @ surface.direction * surface.scale * 2 * math.pi)
    elif surface.pattern == "checker":
        cells = np.floor(points * surface.scale / 2).astype(np.int64).sum(axis=1)
        t = (cells % 2).astype(np.float64)
    elif surface.pattern == "noise":
        t = np.clip(rng.normal(0.5, 0.25, n), 0, 1)
    else:
        return np.broadcast_to(surface.color, (n, 3))
    mix = 0.35 if surface.pattern != "noise" else 0.2
    return surface.color[None] * (1 - mix * t[:, None]) + surface.second[None] * (mix * t[:, None])


def _camera(rng: np.random.Generator, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rotation world->camera optical frame, camera position) looking at ``target`` from above the table."""
    distance = rng.uniform(0.4, 0.75)
    elevation = math.radians(rng.uniform(40, 80))
    azimuth = rng.uniform(0, 2 * math.pi)
    position = target + distance * np.array(
        [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)]
    )
    forward = target - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, Z)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    roll = rng.normal(0, 0.05)
    c, s = math.cos(roll), math.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    return np.stack([right, down, forward]), position


def make_scene(rng: np.random.Generator, classes: ClassSet, name: str, config: SceneConfig = SceneConfig()) -> PartSample:
    """One random scene as a labelled sample with depth and intrinsics (ids of ``classes``)."""
    class_id = {(c.object, c.part): i for i, c in enumerate(classes.classes)}
    object_id = {o: i for i, o in enumerate(classes.objects)}
    usable = [o for o in classes.objects if o in RECIPES]
    world: list[tuple[Primitive, int, int, _Surface]] = []  # primitive, part id, object id, surface
    footprints: list[tuple[np.ndarray, float]] = []

    def free_spot(radius: float) -> np.ndarray | None:
        for _ in range(30):
            spot = np.array([*rng.uniform(-0.18, 0.18, 2), 0.0])
            if all(np.linalg.norm(spot - c) > radius + r for c, r in footprints):
                return spot
        return None

    def add(obj: str, parts: Parts, radius: float, spot: np.ndarray, lift: float = 0.0) -> None:
        rotation = _yaw(rng.uniform(0, 2 * math.pi))
        lying = obj == "bottle" and rng.random() < 0.3
        if lying:  # on its side
            rotation = rotation @ _rot_y(math.pi / 2)
        offset = spot + np.array([0, 0, lift + (parts[0][0].radius if lying else 0.0)])
        looks = {part: _surface(rng) for part in KITCHEN_PARTS[obj]}
        if rng.random() < 0.4:  # one colour for the whole object (parts must be told apart by shape)
            shared = _surface(rng)
            looks = {part: shared for part in looks}
        for primitive, part in parts:
            world.append((_place(primitive, rotation, offset), class_id.get((obj, part), UNLABELLED), object_id[obj],
                          looks[part]))
        footprints.append((spot, radius))

    for _ in range(int(rng.integers(config.min_objects, config.max_objects + 1))):
        obj = str(rng.choice(usable))
        parts, radius = RECIPES[obj](rng)
        spot = free_spot(radius)
        if spot is None:
            continue
        add(obj, parts, radius, spot)
        if obj == "saucer" and "cup" in object_id and rng.random() < 0.6:  # a cup on its saucer
            cup, cup_radius = RECIPES["cup"](rng)
            add("cup", cup, cup_radius, spot + np.array([*rng.normal(0, 0.005, 2), 0]), lift=0.013)
    for _ in range(int(rng.integers(0, config.max_distractors + 1))):
        spot = free_spot(0.04)
        if spot is None:
            continue
        size = rng.uniform(0.02, 0.06)
        shape = rng.choice(["box", "sphere", "cylinder"])
        if shape == "box":
            primitive: Primitive = Box(spot + [0, 0, size], _yaw(rng.uniform(0, 7)), rng.uniform(0.5, 1.0, 3) * size)
        elif shape == "sphere":
            primitive = Sphere(spot + [0, 0, size], size)
        else:
            primitive = Cylinder(spot + [0, 0, size], Z, size * rng.uniform(0.4, 1.0), 2 * size)
        world.append((primitive, UNLABELLED, UNLABELLED, _surface(rng)))
        footprints.append((spot, size))

    table = Plane((0, 0, 0), Z)
    wall = Plane((0, 0.6 + rng.uniform(0, 0.4), 0), (0, -1, 0))
    rotation_y = _yaw(rng.uniform(0, 2 * math.pi))
    wall = _place(wall, rotation_y, np.zeros(3))
    world.append((table, UNLABELLED, UNLABELLED, _surface(rng, ("plain", "stripes", "checker", "noise"))))
    world.append((wall, UNLABELLED, UNLABELLED, _surface(rng, ("plain", "stripes", "noise"))))

    target = np.mean([c for c, _ in footprints], axis=0) if footprints else np.zeros(3)
    target = target + np.array([*rng.normal(0, 0.03, 2), 0.03])
    to_camera, position = _camera(rng, target)
    fov = rng.uniform(50, 70)
    intrinsics = CameraIntrinsics.from_fov(config.width, config.height, fov)
    primitives = [_place(p, to_camera, -to_camera @ position) for p, _, _, _ in world]
    out = render(primitives, intrinsics)

    hit = out.index >= 0
    image = np.empty((config.height, config.width, 3))
    image[:] = _random_color(rng) * 0.6  # beyond the wall (rarely visible)
    light = to_camera @ np.array([*rng.normal(0, 0.6, 2), 1.0])  # from above, in the camera frame
    light /= np.linalg.norm(light)
    ambient = rng.uniform(0.25, 0.5)
    rays = intrinsics.rays()
    points_camera = rays * out.depth[..., None]
    points_world = points_camera @ to_camera + position  # row vectors: p_w = R^T p_c + C
    for i, (_, _, _, surface) in enumerate(world):
        mask = out.index == i
        if not mask.any():
            continue
        normal = out.normal[mask]
        lambert = np.clip(normal @ light, 0, 1)
        view = -rays[mask] / np.linalg.norm(rays[mask], axis=1, keepdims=True)
        halfway = (light + view) / np.linalg.norm(light + view, axis=1, keepdims=True)
        specular = surface.shininess * np.clip((normal * halfway).sum(1), 0, 1) ** 30
        colour = _pattern(surface, points_world[mask], rng)
        image[mask] = colour * (ambient + (1 - ambient) * lambert)[:, None] + 255 * specular[:, None]
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.0))
    image += rng.normal(0, rng.uniform(1, 5), image.shape)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)

    part_of = np.asarray([p for _, p, _, _ in world] + [UNLABELLED], dtype=np.int32)
    object_of = np.asarray([o for _, _, o, _ in world] + [UNLABELLED], dtype=np.int32)
    index = np.where(hit, out.index, len(world))
    return PartSample(name, image, part_of[index], object_of[index], out.depth, intrinsics)


def generate(out: str | Path, train: int, val: int, seed: int = 0, unseen: Iterable[str] = (),
             config: SceneConfig = SceneConfig(), progress: bool = True,
             objects: Iterable[str] | None = None) -> ClassSet:
    """Write a synthetic kitchen dataset (``train`` + ``val`` images; all objects or ``objects``) in the folder
    format under ``out``."""
    from tqdm import tqdm

    classes = kitchen_classes(unseen, objects)
    out = Path(out)
    write_classes(out, classes)
    jobs = [("train", i) for i in range(train)] + [("val", i) for i in range(val)]
    for split, i in tqdm(jobs, disable=not progress, unit="img", desc="synth"):
        rng = np.random.default_rng([seed, 0 if split == "train" else 1, i])
        write_sample(out, split, make_scene(rng, classes, f"{split}_{i:05d}", config))
    return classes
