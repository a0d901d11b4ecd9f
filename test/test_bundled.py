"""The shipped model (docs/training.md, "The bundled model"): small, in the official layout, and it segments the
parts of synthetic kitchen scenes it has never seen (weakly: docs/training.md), and the demo's lid is found in 3D."""
import hashlib

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from partclipseg.checkpoint import load_checkpoint
from partclipseg.data import open_dataset
from partclipseg.data.synth import generate, kitchen_classes
from partclipseg.defaults import BUNDLED_CHECKPOINT, BUNDLED_OBJECTS, REPORT_MIN_OVERLAP
from partclipseg.geometry.parts import GeometrySettings, PartGeometry, part_geometry
from partclipseg.geometry.plausibility import IMPLAUSIBLE, UNKNOWN_QUERY
from partclipseg.geometry.regions import affordance_regions
from partclipseg.train.trainer import export_weights
from partclipseg.evaluate import evaluate
from partclipseg.queries import PartQuery, parse_queries
from partclipseg.data.samples import SAMPLES, kitchen_scene, load_depth
from partclipseg.segmenter import Segmenter

OBJECTS = list(BUNDLED_OBJECTS)
CLASSES = kitchen_classes(objects=OBJECTS).classes
# Held-out mIoU the bundled model must keep (docs/training.md gives its full scores), under what it scored on this
# 8-image set (Oracle-Obj 51.5, Pred-All 2.96): a regression in the model, the loader or the pipeline shows. Both
# floors are above what the plain recipe, the model it replaced, scored here (38.7 and 0.87).
BUNDLED_ORACLE_FLOOR = 48.0
BUNDLED_PRED_ALL_FLOOR = 2.0


@pytest.fixture(scope="module")
def bundled():
    return load_checkpoint(BUNDLED_CHECKPOINT)


def test_bundled_checkpoint_is_small_official_and_knows_the_kitchen(bundled):
    assert BUNDLED_CHECKPOINT.stat().st_size <= 20_000_000
    state = torch.load(BUNDLED_CHECKPOINT, map_location="cpu", weights_only=True)
    assert all(k.startswith("partclipseg_model.") for k in state["model"])
    assert state["model"]["partclipseg_model.decoder.film_mul.weight"].dtype == torch.float16
    assert state["classes"] == [c.name for c in CLASSES]
    c = bundled.config
    assert (c.vision_width, c.vision_layers, c.text_width, c.reduce_dim) == (64, 10, 64, 32)
    assert bundled.decoder.film_mul.weight.dtype == torch.float32


def test_bundled_model_segments_held_out_scenes(bundled, tmp_path):
    generate(tmp_path, train=0, val=8, seed=2024, objects=OBJECTS, progress=False)  # trained on seed 0
    report = evaluate(Segmenter(bundled), open_dataset(tmp_path, "val"))
    assert report.results["oracle"].miou > BUNDLED_ORACLE_FLOOR, report.table()
    assert report.results["pred-all"].miou > BUNDLED_PRED_ALL_FLOOR, report.table()


@pytest.fixture(scope="module")
def demo(bundled):
    """The demo's frame (the rendered kitchen scene with its depth) segmented as the node runs it (Pred-All, the
    demo's queries), and the scene's part labels."""
    kitchen = load_depth("kitchen")
    scene = kitchen_scene()
    assert np.array_equal(scene.image, kitchen.rgb)  # the sample is this rendered scene
    queries = parse_queries(SAMPLES["kitchen"].queries)
    segmenter = Segmenter(bundled)
    segmenter.set_queries(queries)
    return kitchen, scene, queries, segmenter.segment(kitchen.rgb)


def _truth(scene, query: PartQuery) -> np.ndarray:
    return scene.parts == CLASSES.index(query)


def test_bundled_model_finds_the_kitchen_samples_pot_lid_and_its_3d_region(demo):
    """The pot's lid (what this small model segments best) is found, and the 3D points of its mask lie on the true
    lid (rendered depth)."""
    kitchen, scene, queries, result = demo
    assert queries[0] == PartQuery("lid", "pot")
    truth, found = _truth(scene, queries[0]), result.mask(0)
    assert (found & truth).sum() / (found | truth).sum() > 0.75  # measured: 0.86
    region = part_geometry(found, kitchen.depth, kitchen.intrinsics)
    lid = part_geometry(truth, kitchen.depth, kitchen.intrinsics)
    distance, _ = cKDTree(lid.points).query(region.points)
    assert np.mean(distance < 0.01) > 0.9  # the region's 3D points lie on the true lid (within 1 cm; measured 0.97)


def test_bundled_model_gives_the_demo_no_false_grasp_region(demo):
    """Every part of the demo's queries that gets a 3D region (what a grasp planner would act on) lies on that
    part: a mask on another object may be empty or too small for a pose, never a region (docs/training.md, the
    rule by which a model replaces the bundled one)."""
    kitchen, scene, queries, result = demo
    regions = 0
    for i, query in enumerate(queries):
        found = result.mask(i)
        if isinstance(part_geometry(found, kitchen.depth, kitchen.intrinsics), PartGeometry):
            regions += 1
            on_part = (found & _truth(scene, query)).sum() / found.sum()
            assert on_part >= REPORT_MIN_OVERLAP, f"{query.name}: {found.sum()} pixels, {on_part:.0%} on the part"
    assert regions >= 1  # the lid's


def _tensor_digest(path) -> str:
    digest = hashlib.sha256()
    for key, tensor in torch.load(path, map_location="cpu", weights_only=True)["model"].items():
        digest.update(key.encode() + str(tensor.dtype).encode() + tensor.numpy().tobytes())
    return digest.hexdigest()


def test_bundled_checkpoint_is_marked_closed_and_reexports_to_the_same_file(bundled, tmp_path):
    """The file says it is closed-vocabulary; its tensors are those first shipped (digest of that file), and
    exporting the loaded model as the trainer does (scripts/train_bundled.sh) writes this very file."""
    state = torch.load(BUNDLED_CHECKPOINT, map_location="cpu", weights_only=True)
    assert state["vocabulary"] == "closed" and bundled.vocabulary == "closed"
    assert _tensor_digest(BUNDLED_CHECKPOINT) == "d254481ddc1bea2b7578adefe877171c981e8b5a3e6d61d6cca3c71df495e6b6"
    again = export_weights(bundled, tmp_path / BUNDLED_CHECKPOINT.name, iteration=state["iteration"])
    assert again.read_bytes() == BUNDLED_CHECKPOINT.read_bytes()


def test_bundled_model_flags_what_it_never_learned_and_withholds_its_3d(bundled):
    """The issue's cases on the motorcycle photo: cat/ear, motorbike/wheel, cup/handle and what 'grasp' expands to
    beyond the kitchen classes (knob, grip) are flagged and get no 3D region; pot/handle and the bare 'handle' are
    known (and refused here as implausibly large instead)."""
    segmenter = Segmenter(bundled)
    segmenter.set_queries("cat/ear; motorbike/wheel; cup/handle; pot/handle; grasp")
    unknown = {"cat/ear", "motorbike/wheel", "cup/handle", "knob", "grip"}
    assert {q.name for q in segmenter.unknown_queries} == unknown
    motorcycle = load_depth("motorcycle")
    result = segmenter.segment(motorcycle.rgb)
    assert {p.query.name for p in result.parts if p.unknown_query} == unknown
    regions, skipped = affordance_regions(result.parts, result.labels, motorcycle.depth, motorcycle.intrinsics)
    withheld = {s.query.name for s in skipped if s.kind == UNKNOWN_QUERY}
    assert withheld == {p.query.name for p in result.parts if p.unknown_query and p.pixel_count} >= {"cup/handle"}
    assert not any(r.unknown_query or r.query.name in unknown for r in regions)
    allowed, _ = affordance_regions(result.parts, result.labels, motorcycle.depth, motorcycle.intrinsics,
                                    settings=GeometrySettings(max_part_extent=100.0), allow_unknown=True)
    flagged = {r.query.name for r in allowed if r.unknown_query}
    assert flagged == withheld and all(r.unknown_query == (r.query.name in unknown) for r in allowed)


def test_geometry_docs_example_on_the_motorcycle_is_refused_as_implausible(bundled):
    """docs/geometry.md's example ('grasp:knife; pot/lid') on the motorcycle photo: the knife's handle is one of the
    model's classes, but its mask spills over the motorcycle (a 2.05 x 1.30 x 1.95 m region): refused."""
    segmenter = Segmenter(bundled)
    segmenter.set_queries("grasp:knife; pot/lid")
    motorcycle = load_depth("motorcycle")
    result = segmenter.segment(motorcycle.rgb)
    assert not segmenter.unknown_queries and result.parts[0].pixel_count > 1000
    regions, skipped = affordance_regions(result.parts, result.labels, motorcycle.depth, motorcycle.intrinsics)
    assert regions == [] and [(s.query.name, s.kind) for s in skipped] == [("knife/handle", IMPLAUSIBLE)]
    assert "larger than max_part_extent 1 m" in skipped[0].reason
