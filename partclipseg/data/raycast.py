"""A small vectorised ray caster: exact depth, primitive index and normals of 3D primitives seen by a pinhole camera.

Used where known truth is needed: the geometry tests and the synthetic part-dataset generator.

Conventions (the same as :mod:`partclipseg.geometry.camera`):

* everything is in the camera optical frame: x right, y down, z forward, metres; the camera is at the origin;
* one ray per pixel, through the pixel centre: pixel ``(u, v)`` looks along ``((u - cx) / fx, (v - cy) / fy, 1)``;
* ``depth`` is the z coordinate of the nearest hit (as a depth camera reports it), 0 where the ray hits nothing;
* ``index`` is the position of the hit primitive in the list given to :func:`render`, -1 where nothing is hit;
* ``normal`` is the unit surface normal at the hit, turned to face the camera (normal . ray <= 0); 0 where nothing
  is hit;
* only hits in front of the camera count (depth > 0). A camera inside a closed primitive sees its inner surface.

Primitives are frozen dataclasses; ``axis``, ``normal`` and ``rotation`` need not be normalised exactly (they are
normalised on construction; ``rotation`` must be a rotation, columns = the box's axes in the camera frame).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from ..geometry.camera import CameraIntrinsics

_EPS = 1e-12


def _vec(value, name: str) -> np.ndarray:
    out = np.asarray(value, dtype=np.float64).reshape(-1)
    if out.shape != (3,) or not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be 3 finite numbers, got {value!r}")
    return out


def _unit(value, name: str) -> np.ndarray:
    out = _vec(value, name)
    norm = np.linalg.norm(out)
    if norm < 1e-9:
        raise ValueError(f"{name} must be a non-zero vector, got {value!r}")
    return out / norm


def _positive(value: float, name: str) -> float:
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


@dataclass(frozen=True, eq=False)
class Plane:
    """An infinite plane through ``point`` with normal ``normal`` (a table top, a wall)."""

    point: np.ndarray
    normal: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "point", _vec(self.point, "Plane.point"))
        object.__setattr__(self, "normal", _unit(self.normal, "Plane.normal"))

    def intersect(self, rays: np.ndarray) -> np.ndarray:
        denom = self.normal @ rays
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self.point @ self.normal) / denom
        return np.where(np.abs(denom) > _EPS, t, np.inf)

    def normals(self, points: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.normal[:, None], points.shape)


@dataclass(frozen=True, eq=False)
class Sphere:
    center: np.ndarray
    radius: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _vec(self.center, "Sphere.center"))
        object.__setattr__(self, "radius", _positive(self.radius, "Sphere.radius"))

    def intersect(self, rays: np.ndarray) -> np.ndarray:
        # |t d - c|^2 = r^2  ->  a t^2 - 2 b t + cc = 0
        a = _norm2(rays)
        b = self.center @ rays
        cc = self.center @ self.center - self.radius**2
        return _nearest_root(a, b, cc)

    def normals(self, points: np.ndarray) -> np.ndarray:
        return points - self.center[:, None]


@dataclass(frozen=True, eq=False)
class Box:
    """A box with half sizes ``half_extents`` along the columns of ``rotation``, centred at ``center``."""

    center: np.ndarray
    rotation: np.ndarray
    half_extents: np.ndarray

    def __post_init__(self) -> None:
        rotation = np.asarray(self.rotation, dtype=np.float64)
        if rotation.shape != (3, 3) or not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-6) \
                or np.linalg.det(rotation) < 0:
            raise ValueError("Box.rotation must be a 3x3 rotation matrix (orthonormal, det +1)")
        half = _vec(self.half_extents, "Box.half_extents")
        if np.any(half <= 0):
            raise ValueError(f"Box.half_extents must be positive, got {self.half_extents!r}")
        object.__setattr__(self, "center", _vec(self.center, "Box.center"))
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "half_extents", half)

    def intersect(self, rays: np.ndarray) -> np.ndarray:
        # slab test in the box frame: origin R^T (0 - c), direction R^T ray
        origin = -self.center @ self.rotation
        local = self.rotation.T @ rays
        t_near = np.full(rays.shape[1], -np.inf)
        t_far = np.full(rays.shape[1], np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            for k in range(3):
                inverse = 1.0 / local[k]
                t1 = (-self.half_extents[k] - origin[k]) * inverse
                t2 = (self.half_extents[k] - origin[k]) * inverse
                np.maximum(t_near, np.minimum(t1, t2), out=t_near)
                np.minimum(t_far, np.maximum(t1, t2), out=t_far)
        t = np.where(t_near > 0, t_near, t_far)  # a camera inside the box sees the far faces
        return np.where((t_far >= t_near) & (t > 0), t, np.inf)

    def normals(self, points: np.ndarray) -> np.ndarray:
        local = self.rotation.T @ (points - self.center[:, None]) / self.half_extents[:, None]
        face = np.abs(local).argmax(axis=0)  # the face a surface point lies on: |local| = 1 there
        normal = np.zeros_like(local)
        columns = np.arange(local.shape[1])
        normal[face, columns] = np.sign(local[face, columns])
        return self.rotation @ normal


@dataclass(frozen=True, eq=False)
class Cylinder:
    """A capped cylinder: ``length`` along ``axis`` (total, centred at ``center``), ``radius``."""

    center: np.ndarray
    axis: np.ndarray
    radius: float
    length: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _vec(self.center, "Cylinder.center"))
        object.__setattr__(self, "axis", _unit(self.axis, "Cylinder.axis"))
        object.__setattr__(self, "radius", _positive(self.radius, "Cylinder.radius"))
        object.__setattr__(self, "length", _positive(self.length, "Cylinder.length"))

    def intersect(self, rays: np.ndarray) -> np.ndarray:
        a, half, r2 = self.axis, self.length / 2, self.radius**2
        origin = -self.center  # the camera relative to the centre
        o_axial = origin @ a
        d_axial = a @ rays
        o_radial = origin - o_axial * a
        d_radial = rays - np.outer(a, d_axial)
        # side: |o_r + t d_r|^2 = r^2 with |axial| <= half
        qa = _norm2(d_radial)
        qb = -(o_radial @ d_radial)
        qc = o_radial @ o_radial - r2
        best = np.full(rays.shape[1], np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):  # inf * 0 where a ray misses: not a hit either way
            for root in _roots(qa, qb, qc):
                ok = (root > 0) & (np.abs(o_axial + root * d_axial) <= half)
                np.minimum(best, np.where(ok, root, np.inf), out=best)
            # caps: axial = +-half with radial distance <= r; |o_r + t d_r|^2 = qa t^2 - 2 qb t + qc + r^2
            for level in (-half, half):
                t = (level - o_axial) / d_axial
                ok = (t > 0) & (qa * t * t - 2 * qb * t + qc <= 0)
                np.minimum(best, np.where(ok, t, np.inf), out=best)
        return best

    def normals(self, points: np.ndarray) -> np.ndarray:
        relative = points - self.center[:, None]
        axial = self.axis @ relative
        radial = relative - np.outer(self.axis, axial)
        on_cap = np.abs(axial) / (self.length / 2) >= np.sqrt(_norm2(radial)) / self.radius
        return np.where(on_cap, np.outer(self.axis, np.sign(axial)), radial)


Primitive = Union[Plane, Sphere, Box, Cylinder]


def _norm2(vectors: np.ndarray) -> np.ndarray:
    """Squared norms of (3, N) column vectors."""
    return vectors[0] * vectors[0] + vectors[1] * vectors[1] + vectors[2] * vectors[2]


def _roots(a: np.ndarray, b: np.ndarray, c: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both roots of a t^2 - 2 b t + c = 0 (inf where there is none)."""
    disc = b * b - a * c
    ok = (disc >= 0) & (a > _EPS)
    root = np.sqrt(np.where(ok, disc, 0.0))
    safe_a = np.where(ok, a, 1.0)
    return np.where(ok, (b - root) / safe_a, np.inf), np.where(ok, (b + root) / safe_a, np.inf)


def _nearest_root(a: np.ndarray, b: np.ndarray, c: float | np.ndarray) -> np.ndarray:
    """Smallest positive root of a t^2 - 2 b t + c = 0 (inf where there is none)."""
    near, far = _roots(a, b, c)
    return np.where(near > 0, near, np.where(far > 0, far, np.inf))


@dataclass
class RenderOutput:
    depth: np.ndarray  # (H, W) float32 metres (z of the hit), 0 = nothing hit
    index: np.ndarray  # (H, W) int32 index of the hit primitive, -1 = nothing hit
    normal: np.ndarray  # (H, W, 3) float32 unit normals facing the camera, 0 = nothing hit

    def mask(self, index: int) -> np.ndarray:
        """Boolean mask of the pixels where primitive ``index`` is the nearest surface."""
        return self.index == index

    def depth_mm(self) -> np.ndarray:
        """Depth as a 16UC1 image in millimetres (0 = no depth), as RealSense-style cameras publish it."""
        return np.clip(np.rint(self.depth * 1000.0), 0, 65535).astype(np.uint16)


def render(primitives: Sequence[Primitive], intrinsics: CameraIntrinsics) -> RenderOutput:
    """Nearest hit per pixel of ``primitives`` (see the module docstring for the conventions)."""
    h, w = intrinsics.size
    rays = np.ascontiguousarray(intrinsics.rays().reshape(-1, 3).T)  # (3, N), z = 1
    best = np.full(rays.shape[1], np.inf)
    index = np.full(rays.shape[1], -1, dtype=np.int32)
    for i, primitive in enumerate(primitives):
        t = primitive.intersect(rays)
        closer = (t > 0) & (t < best)
        best[closer] = t[closer]
        index[closer] = i
    normal = np.zeros((3, rays.shape[1]))
    for i, primitive in enumerate(primitives):
        hit = np.flatnonzero(index == i)
        if hit.size:
            hit_rays = rays[:, hit]
            n = primitive.normals(hit_rays * best[hit])
            n = n / np.sqrt(_norm2(n))
            normal[:, hit] = np.where((n * hit_rays).sum(axis=0) > 0, -n, n)  # face the camera
    depth = np.where(index >= 0, best, 0.0)  # rays have z = 1, so the ray parameter is the depth
    return RenderOutput(
        depth=depth.reshape(h, w).astype(np.float32),
        index=index.reshape(h, w),
        normal=np.ascontiguousarray(normal.T.reshape(h, w, 3), dtype=np.float32),
    )


def shade(output: RenderOutput, colors: Sequence[Sequence[int]], background: Sequence[int] = (0, 0, 0),
          light: Sequence[float] = (-0.3, -0.6, -1.0), ambient: float = 0.35) -> np.ndarray:
    """(H, W, 3) uint8 RGB: each primitive in its colour (``colors[i]`` for primitive i), Lambert-shaded by a
    directional light shining *towards* ``-light`` (i.e. ``light`` points from the scene to the lamp)."""
    colors = np.asarray(colors, dtype=np.float64).reshape(-1, 3)
    if colors.shape[0] <= int(output.index.max(initial=-1)):
        raise ValueError(f"{colors.shape[0]} colours for {int(output.index.max()) + 1} primitives")
    lamp = _unit(light, "light")
    lambert = np.clip(output.normal @ lamp, 0.0, 1.0)
    gain = ambient + (1.0 - ambient) * lambert
    hit = output.index >= 0
    out = np.empty((*output.index.shape, 3))
    out[:] = np.asarray(background, dtype=np.float64)
    out[hit] = colors[output.index[hit]] * gain[hit][:, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
