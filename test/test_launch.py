"""The start-up as users type it: every `ros2 launch` line in the docs uses arguments the launch file declares, and
each reaches the node (run through `partclipseg-ros segment`, which reads the same argument table as the launch
file); config/segment.yaml is exactly the node's parameter table; topics do not depend on the node's name."""
from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest
import yaml
from ros_harness import REPO, Camera, Harness, NodeProcess, wait_for_log

from partclipseg.data.samples import load_sample
from partclipseg.defaults import BUNDLED_CHECKPOINT
from partclipseg_ros.launch_arguments import (
    ARGUMENTS, BY_NAME, NODE, PARAMETER, REMAP, LaunchArgumentError, parameter_overrides, parse_assignments,
    remappings,
)
from partclipseg_ros.parameters import SPECS

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "launch" / "segment.launch.py"]
COMMAND = "ros2 launch partclipseg_ros segment.launch.py"


def launch_lines() -> list[tuple[str, list[str]]]:
    """(where, name:=value tokens) of every `ros2 launch` line in the docs (continuation lines joined)."""
    found = []
    for path in DOCUMENTS:
        text = path.read_text().replace("\\\n", " ")
        for match in re.finditer(re.escape(COMMAND) + r"([^\n`]*)", text):
            tokens = shlex.split(match.group(1).split("#")[0])
            found.append((f"{path.name}: {COMMAND}{match.group(1)[:60]}", [t for t in tokens if ":=" in t]))
    return found


LINES = launch_lines()
# the lines with arguments, each distinct one once (the README's main line is repeated in docs/ros.md)
RUNNABLE = list({tuple(sorted(tokens)): (where, tokens) for where, tokens in LINES if tokens}.values())


def test_the_docs_have_launch_lines_with_arguments():
    assert len(LINES) >= 4
    assert sum(1 for _, tokens in LINES if any(t.startswith("checkpoint:=") for t in tokens)) >= 2


@pytest.mark.parametrize("where, tokens", LINES, ids=[w for w, _ in LINES])
def test_every_documented_argument_is_declared(where, tokens):
    values = parse_assignments(tokens)  # raises for a name the launch file does not declare
    parameter_overrides(values)  # and for a value of the wrong type
    assert all("..." not in value for value in values.values()), f"{where}: a placeholder cannot be typed as is"


def test_the_launch_file_declares_the_table_and_builds_the_node_from_it():
    tree = ast.parse((REPO / "launch" / "segment.launch.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "partclipseg_ros.launch_arguments" for alias in node.names}
    assert {"ARGUMENTS", "parameter_overrides", "remappings", "node_setting", "autostart"} <= imported
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert {"DeclareLaunchArgument", "LifecycleNode", "parameter_overrides", "remappings", "OpaqueFunction"} <= called


def test_arguments_are_typed_and_empty_ones_keep_the_parameters_file():
    values = parse_assignments(["score_threshold:=0", "min_pixels:=25", "queries:=true", "checkpoint:=",
                                "image:=/cam/image", "depth:=depth", "namespace:=robot1"])
    assert parameter_overrides(values) == {"score_threshold": 0.0, "min_pixels": 25, "queries": "true"}
    assert remappings(values) == [("image", "/cam/image")]
    with pytest.raises(LaunchArgumentError, match="score_threshold:=high: expected float"):
        parameter_overrides(parse_assignments(["score_threshold:=high"]))
    with pytest.raises(LaunchArgumentError, match="unknown argument 'weights'"):
        parse_assignments(["weights:=/w.pth"])
    kinds = {a.kind for a in ARGUMENTS}
    assert kinds == {NODE, REMAP, PARAMETER}
    assert {a.name for a in ARGUMENTS if a.kind == PARAMETER} >= {
        "checkpoint", "random_weights", "backend", "device", "precision", "queries", "mode", "score_threshold",
        "target_frame", "image_transport"}


def test_segment_takes_arguments_wherever_they_are_typed():
    """`partclipseg-ros segment` reads name:=value arguments between its options as a launch line's (argparse alone
    refuses a second run of them), and leaves -p/-r values where they are."""
    from partclipseg_ros.cli import assignments_first, build_parser, start_values

    typed = ["segment", "backend:=torch", "--random-weights", "tiny", "-p", "overlay:=false", "--namespace", "robot",
             "cameras:=head; wrist", "-r", "head/image:=/cam", "--no-autostart", "image_transport:=compressed"]
    args = build_parser().parse_args(assignments_first(typed))
    assert args.arguments == ["backend:=torch", "cameras:=head; wrist", "image_transport:=compressed"]
    assert (args.param, args.remap, args.namespace, args.no_autostart) == (["overlay:=false"], ["head/image:=/cam"],
                                                                          "robot", True)
    assert start_values(args) == {"backend": "torch", "cameras": "head; wrist", "image_transport": "compressed",
                                  "random_weights": "tiny", "namespace": "robot", "autostart": "false"}


def test_the_config_file_is_the_node_parameter_table():
    data = yaml.safe_load((REPO / "config" / "segment.yaml").read_text())
    values = data["/**"]["ros__parameters"]
    declared = {spec.name: list(spec.default) if isinstance(spec.default, tuple) else spec.default for spec in SPECS}
    assert list(values) == list(declared), "config/segment.yaml lists other parameters, or in another order"
    for name, value in values.items():
        assert type(value) is type(declared[name]) and value == declared[name], name


# --- the lines run, as users type them -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def harness():
    h = Harness("test_launch")
    yield h
    h.close()


def runnable(tokens: list[str]) -> dict[str, str]:
    """The line's values, with a checkpoint that does not exist here replaced by the bundled model."""
    values = parse_assignments(tokens)
    if values.get("checkpoint") and not Path(values["checkpoint"]).exists():
        values["checkpoint"] = str(BUNDLED_CHECKPOINT)
    return values


@pytest.mark.ros
@pytest.mark.parametrize("where, tokens", RUNNABLE, ids=[w for w, _ in RUNNABLE])
def test_every_documented_line_reaches_the_node(harness, tmp_path, where, tokens):
    values = runnable(tokens)
    namespace = "/" + (values.get("namespace") or BY_NAME["namespace"].default).strip("/")
    name = values.get("node_name") or BY_NAME["node_name"].default
    process = NodeProcess(["-m", "partclipseg_ros.cli", "segment", *(f"{k}:={v}" for k, v in values.items()),
                           "-p", "diagnostics_period:=0.2"], tmp_path / "node.log")
    try:
        harness.wait(lambda: "active:" in process.log() or "configure failed" in process.log(), 60,
                     "the node active, or its configure failed with the reason", process)
        node = f"{namespace.rstrip('/')}/{name}"
        for parameter, value in parameter_overrides(values).items():
            assert harness.get_parameter_of(node, parameter) == value, f"{where}: {parameter}"
        if "active:" in process.log():
            remaps = dict(remappings(values))
            suffix = "/compressed" if values.get("image_transport") == "compressed" else ""
            cameras = [c.strip() for c in values.get("cameras", "").split(";") if c.strip()]
            for base in [f"{camera}/image" for camera in cameras] or ["image"]:
                image = remaps.get(base, base)
                image = image if image.startswith("/") else f"{namespace.rstrip('/')}/{image}"
                wait_for_log(harness, process, f"active: segmenting {image}{suffix} ", timeout=10)
    finally:
        assert process.stop() == 0, process.log()[-3000:]


@pytest.mark.ros
def test_the_main_line_reaches_active_answers_a_frame_and_topics_ignore_the_node_name(harness, tmp_path):
    where, tokens = next((w, t) for w, t in LINES if w.startswith("README") and any("checkpoint:=" in x for x in t))
    values = runnable(tokens)
    values.update(node_name="renamed_segmenter", namespace="robot_x")
    process = NodeProcess(["-m", "partclipseg_ros.cli", "segment", *(f"{k}:={v}" for k, v in values.items())],
                          tmp_path / "node.log")
    try:
        image = dict(remappings(values))["image"]
        camera = Camera(harness, image, "robot_x")
        wait_for_log(harness, process, f"active: segmenting {image}", timeout=60)
        msg = camera.segment(load_sample("kitchen"), process=process)
        assert list(msg.queries)  # the line's queries, answered on /robot_x/segmentation
        assert harness.get_parameter_of("/robot_x/renamed_segmenter", "checkpoint") == str(BUNDLED_CHECKPOINT)
    finally:
        assert process.stop() == 0, process.log()[-3000:]
