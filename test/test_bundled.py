"""The shipped model (docs/training.md, "The bundled model"): small, in the official layout, and it segments the
parts of synthetic kitchen scenes it has never seen (weakly: docs/training.md), and the demo's lid is found in 3D."""
import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from partclipseg.checkpoint import load_checkpoint
from partclipseg.data import open_dataset
from partclipseg.data.synth import generate, kitchen_classes
from partclipseg.defaults import BUNDLED_CHECKPOINT, BUNDLED_OBJECTS, REPORT_MIN_OVERLAP
from partclipseg.geometry.parts import PartGeometry, part_geometry
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
