"""The start-up arguments of ``ros2 launch partclipseg_ros segment.launch.py`` and ``partclipseg-ros segment``:
one table, read by both (no launch import here, so it is tested without launch installed).

``name:=value`` sets a node parameter, remaps an input, or places the node; an empty value keeps what the
parameters file says.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .parameters import SPEC

PARAMETER, REMAP, NODE = "parameter", "remap", "node"
DEFAULT_NAMESPACE = "partclipseg"
DEFAULT_NODE_NAME = "partclipseg"
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    kind: str  # PARAMETER, REMAP or NODE
    default: str  # "" for parameters: keep the parameters file's value
    description: str


def _parameter(name: str) -> LaunchArgument:
    return LaunchArgument(name, PARAMETER, "", f"{SPEC[name].description} ('' = the parameters file's value)")


ARGUMENTS = (
    LaunchArgument("params_file", NODE, "", "parameters YAML ('' = the package's config/segment.yaml)"),
    LaunchArgument("namespace", NODE, DEFAULT_NAMESPACE, "namespace of the node and of all its topics and services"),
    LaunchArgument("node_name", NODE, DEFAULT_NODE_NAME, "node name (topics do not depend on it)"),
    LaunchArgument("autostart", NODE, "true", "configure and activate the node (false: drive its lifecycle yourself)"),
    LaunchArgument("image", REMAP, "image", "colour image topic (rgb8, bgr8, mono8, rgba8, bgra8; with "
                   "image_transport:=compressed its /compressed sub-topic is read)"),
    LaunchArgument("depth", REMAP, "depth", "depth image registered to the colour image (16UC1 mm or 32FC1 m)"),
    LaunchArgument("camera_info", REMAP, "camera_info", "camera_info of the colour image"),
    LaunchArgument("remappings", NODE, "", "more remaps, 'from:=to; ...': with cameras, e.g. "
                   "'head/image:=/head_camera/color/image_raw; wrist/image:=/wrist_camera/color/image_raw'"),
    *(_parameter(name) for name in (
        "cameras",
        "checkpoint", "random_weights", "backend", "device", "precision", "queries", "mode", "objects",
        "score_threshold", "min_pixels", "target_frame", "image_transport", "input_qos", "cache_dir")),
)
BY_NAME = {argument.name: argument for argument in ARGUMENTS}


class LaunchArgumentError(ValueError):
    """A ``name:=value`` that this start-up does not take, or a value of the wrong type."""


def parse_assignments(tokens: list[str]) -> dict[str, str]:
    """``["image:=/cam/image", ...]`` -> {"image": "/cam/image", ...}, refusing names that are not arguments."""
    values = {}
    for token in tokens:
        name, separator, value = token.partition(":=")
        if not separator:
            raise LaunchArgumentError(f"{token!r} is not of the form name:=value")
        if name not in BY_NAME:
            raise LaunchArgumentError(f"unknown argument {name!r}; the arguments are: {', '.join(BY_NAME)}")
        values[name] = value
    return values


def _typed(name: str, text: str) -> Any:
    default = SPEC[name].default
    if isinstance(default, bool):
        if text.lower() not in TRUE + FALSE:
            raise LaunchArgumentError(f"{name}:={text}: expected true or false")
        return text.lower() in TRUE
    try:
        return type(default)(text)
    except ValueError:
        raise LaunchArgumentError(f"{name}:={text}: expected {type(default).__name__} like {default!r}") from None


def parameter_overrides(values: Mapping[str, str]) -> dict[str, Any]:
    """The node parameters the arguments set, typed as the node declares them; empty values are left out."""
    return {name: _typed(name, value) for name, value in values.items()
            if BY_NAME[name].kind == PARAMETER and value != ""}


def remappings(values: Mapping[str, str]) -> list[tuple[str, str]]:
    """(from, to) for every input whose topic differs from its default name, then those of ``remappings``."""
    out = []
    for argument in ARGUMENTS:
        if argument.kind == REMAP:
            topic = values.get(argument.name) or argument.default
            if topic != argument.name:
                out.append((argument.name, topic))
    for rule in (values.get("remappings") or "").replace(",", ";").split(";"):
        if rule.strip():
            source, separator, target = (part.strip() for part in rule.partition(":="))
            if not (separator and source and target):
                raise LaunchArgumentError(f"remappings: {rule.strip()!r} is not of the form from:=to")
            out.append((source, target))
    return out


def node_setting(values: Mapping[str, str], name: str) -> str:
    """A NODE argument's value (its default when not given)."""
    return values.get(name) or BY_NAME[name].default


def autostart(values: Mapping[str, str]) -> bool:
    text = node_setting(values, "autostart").lower()
    if text not in TRUE + FALSE:
        raise LaunchArgumentError(f"autostart:={text}: expected true or false")
    return text in TRUE
