"""The shipped model (docs/training.md, "The bundled model"): small, in the official layout, and it segments the
parts of synthetic kitchen scenes it has never seen (weakly: docs/training.md), and the demo's lid is found in 3D."""
import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from partclipseg.checkpoint import load_checkpoint
from partclipseg.data import open_dataset
from partclipseg.data.synth import generate, kitchen_classes
from partclipseg.defaults import BUNDLED_CHECKPOINT, BUNDLED_OBJECTS
from partclipseg.geometry import part_geometry
from partclipseg.evaluate import evaluate
from partclipseg.queries import PartQuery
from partclipseg.samples import SAMPLES, kitchen_scene, load_depth
from partclipseg.segmenter import Segmenter

OBJECTS = list(BUNDLED_OBJECTS)
# Held-out mIoU the bundled model must keep (docs/training.md gives its full scores), under what it scored on this
# 8-image set (Oracle-Obj 38.7, Pred-All 0.87): a regression in the model, the loader or the pipeline shows. The
# Oracle floor is above always answering an object's largest part (35.4 on the 150 val images).
BUNDLED_ORACLE_FLOOR = 36.0
BUNDLED_PRED_ALL_FLOOR = 0.5


@pytest.fixture(scope="module")
def bundled():
    return load_checkpoint(BUNDLED_CHECKPOINT)


def test_bundled_checkpoint_is_small_official_and_knows_the_kitchen(bundled):
    assert BUNDLED_CHECKPOINT.stat().st_size <= 20_000_000
    state = torch.load(BUNDLED_CHECKPOINT, map_location="cpu", weights_only=True)
    assert all(k.startswith("partclipseg_model.") for k in state["model"])
    assert state["model"]["partclipseg_model.decoder.film_mul.weight"].dtype == torch.float16
    assert state["classes"] == [c.name for c in kitchen_classes(objects=OBJECTS).classes]
    c = bundled.config
    assert (c.vision_width, c.vision_layers, c.text_width, c.reduce_dim) == (64, 10, 64, 32)
    assert bundled.decoder.film_mul.weight.dtype == torch.float32


def test_bundled_model_segments_held_out_scenes(bundled, tmp_path):
    generate(tmp_path, train=0, val=8, seed=2024, objects=OBJECTS, progress=False)  # trained on seed 0
    report = evaluate(Segmenter(bundled), open_dataset(tmp_path, "val"))
    assert report.results["oracle"].miou > BUNDLED_ORACLE_FLOOR, report.table()
    assert report.results["pred-all"].miou > BUNDLED_PRED_ALL_FLOOR, report.table()


def test_bundled_model_finds_the_kitchen_samples_pot_lid_and_its_3d_region(bundled):
    """The demo's scene, Pred-All as the node runs it: the pot's lid (what this small model segments best) is
    found, and the 3D points of its mask lie on the true lid (rendered depth)."""
    kitchen = load_depth("kitchen")
    classes = kitchen_classes(objects=OBJECTS)
    scene = kitchen_scene()
    assert np.array_equal(scene.image, kitchen.rgb)  # the sample is this rendered scene
    truth = scene.parts == classes.classes.index(PartQuery("lid", "pot"))
    segmenter = Segmenter(bundled)
    segmenter.set_queries(SAMPLES["kitchen"].queries)  # pot/lid first
    found = segmenter.segment(kitchen.rgb).mask(0)
    assert (found & truth).sum() / (found | truth).sum() > 0.5  # measured: 0.70
    region = part_geometry(found, kitchen.depth, kitchen.intrinsics)
    lid = part_geometry(truth, kitchen.depth, kitchen.intrinsics)
    distance, _ = cKDTree(lid.points).query(region.points)
    assert np.mean(distance < 0.01) > 0.8  # the region's 3D points lie on the true lid (within 1 cm)
