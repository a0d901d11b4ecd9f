"""Dataset layouts on tiny generated datasets, the synthetic generator, and clear errors for malformed folders."""
import json

import cv2
import numpy as np
import pytest

from partclipseg.data import (ADE20K_PART_234, PASCAL_PART_116, DatasetError, FolderDataset, detect_layout,
                              open_dataset)
from partclipseg.data.ovparts import decode_rle
from partclipseg.data.synth import KITCHEN_PARTS, SceneConfig, generate, kitchen_classes, make_scene
from partclipseg.queries import PartQuery, Vocabulary


def test_reference_class_lists_and_splits():
    for classes, total, seen, parts, objects, seen_parts, seen_objects in (
        (PASCAL_PART_116, 116, 74, 42, 16, 41, 11),
        (ADE20K_PART_234, 234, 176, 85, 44, 83, 33),
    ):
        test_vocab, train_vocab = Vocabulary.from_queries(classes.classes), Vocabulary.from_queries(classes.seen)
        assert (len(classes.classes), len(classes.seen)) == (total, seen)
        assert (len(test_vocab.parts), len(test_vocab.objects)) == (parts, objects)
        assert (len(train_vocab.parts), len(train_vocab.objects)) == (seen_parts, seen_objects)
    assert PASCAL_PART_116.classes[0] == PartQuery("body", "aeroplane")
    assert PASCAL_PART_116.classes[-1] == PartQuery("screen", "tvmonitor")
    assert PASCAL_PART_116.objects[3] == "boat" and PASCAL_PART_116.unseen == {"bird", "car", "dog", "sheep", "motorbike"}
    assert "beak" not in Vocabulary.from_queries(PASCAL_PART_116.seen).parts
    assert ADE20K_PART_234.classes[9] == PartQuery("door frame", "door")
    assert ADE20K_PART_234.objects[:3] == ("airplane", "armchair", "bed")


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def test_pascal_part_116_layout(tmp_path):
    image = np.full((6, 8, 3), 100, np.uint8)
    parts = np.full((6, 8), 255, np.uint8)
    parts[1:3, 1:4] = 20  # bottle's body
    parts[3, 1:4] = 21  # bottle's cap
    objects = np.full((6, 8), 255, np.uint8)
    objects[1:4, 1:4] = 4  # bottle
    objects[5, 5:] = 3  # a boat: no part classes
    for split in ("train", "val"):
        _png(tmp_path / "images" / split / "2008_000001.jpg", image)
        _png(tmp_path / "annotations_detectron2_part" / split / "2008_000001.png", parts)
        _png(tmp_path / "annotations_detectron2_obj" / split / "2008_000001.png", objects)
    assert detect_layout(tmp_path) == "pascal-part-116"
    sample = open_dataset(tmp_path, "val")[0]
    assert sample.parts[1, 1] == 20 and sample.parts[3, 2] == 21 and sample.parts[0, 0] == -1
    assert sample.objects[2, 2] == 4 and sample.objects[5, 6] == 3 and sample.objects[0, 0] == -1
    assert sample.records() == [4]  # one record per object with labelled parts; the boat has none
    bad = parts.copy()
    bad[0, 0] = 200
    _png(tmp_path / "annotations_detectron2_part" / "val" / "2008_000001.png", bad)
    with pytest.raises(DatasetError, match="unexpected label values \\[200\\]"):
        open_dataset(tmp_path, "val")[0]
    with pytest.raises(DatasetError, match="'train' and 'val'"):
        open_dataset(tmp_path, "test")


def _rle_encode(mask: np.ndarray) -> str:
    """COCO compressed RLE (column-major runs, first run = zeros), written independently for the test."""
    flat = mask.T.reshape(-1).astype(np.uint8)
    runs, value, count = [], 0, 0
    for v in flat:
        if v != value:
            runs.append(count)
            value, count = v, 0
        count += 1
    runs.append(count)
    out = []
    for i, run in enumerate(runs):
        x = run - runs[i - 2] if i > 2 else run
        more = True
        while more:
            chunk = x & 0x1F
            x >>= 5
            more = not ((x == 0 and not chunk & 0x10) or (x == -1 and chunk & 0x10))
            out.append(chr(chunk + 48 + (0x20 if more else 0)))
    return "".join(out)


def test_coco_rle_decoding_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(5):
        mask = rng.random((13, 17)) < 0.4
        assert np.array_equal(decode_rle(_rle_encode(mask), 13, 17), mask)
    assert decode_rle([2, 3, 1], 2, 3).T.reshape(-1).tolist() == [0, 0, 1, 1, 1, 0]
    with pytest.raises(DatasetError, match="covers"):
        decode_rle([2, 3], 2, 3)


def test_ade20k_part_234_layout_with_polygons_rle_and_the_test_split(tmp_path):
    image = np.full((10, 12, 3), 50, np.uint8)
    parts = np.full((10, 12), 65535, np.uint16)
    parts[1:4, 1:4] = 46  # chair's back
    parts[6:9, 6:10] = 101  # stool's seat (stool is unseen)
    chair = [[1, 1, 5, 1, 5, 5, 1, 5]]  # polygon
    stool = np.zeros((10, 12), bool)
    stool[6:9, 6:10] = True
    categories = [{"id": 7, "name": "chair"}, {"id": 30, "name": "stool"}]
    for folder, tag in (("training", "train"), ("validation", "val")):
        _png(tmp_path / "images" / folder / f"ADE_{tag}_1.jpg", image)
        _png(tmp_path / "annotations_detectron2_part" / folder / f"ADE_{tag}_1.png", parts)
        data = {"images": [{"id": 1, "file_name": f"ADE_{tag}_1.jpg", "height": 10, "width": 12}],
                "annotations": [{"image_id": 1, "category_id": 7, "segmentation": chair},
                                {"image_id": 1, "category_id": 30,
                                 "segmentation": {"size": [10, 12], "counts": _rle_encode(stool)}}],
                "categories": categories}
        (tmp_path / f"ade20k_instance_{tag}.json").write_text(json.dumps(data))
    assert detect_layout(tmp_path) == "ade20k-part-234"
    sample = open_dataset(tmp_path, "val")[0]
    chair_id, stool_id = ADE20K_PART_234.objects.index("chair"), ADE20K_PART_234.objects.index("stool")
    assert ADE20K_PART_234.classes[46] == PartQuery("back", "chair")
    assert ADE20K_PART_234.classes[101] == PartQuery("seat", "stool")
    assert sample.objects[3, 3] == chair_id and sample.objects[7, 7] == stool_id and sample.objects[0, 0] == -1
    assert sample.parts[2, 2] == 46 and sample.parts[0, 0] == -1
    assert sample.records() == sorted([chair_id, stool_id])
    test = open_dataset(tmp_path, "test")  # validation + the unseen-object instances of training images
    assert len(test) == 2
    assert test[1].records() == [stool_id] and (test[1].objects == chair_id).sum() == 0


def test_folder_layout_and_synthetic_generator(tmp_path):
    classes = generate(tmp_path, train=3, val=2, seed=1, unseen=["kettle"], config=SceneConfig(80, 60), progress=False)
    assert (tmp_path / "classes.txt").read_text().splitlines()[0] == "pot/body"
    assert (tmp_path / "unseen.txt").read_text().strip() == "kettle"
    data = FolderDataset(tmp_path, "train")
    assert data.classes.classes == classes.classes and data.classes.unseen == {"kettle"} and len(data) == 3 and detect_layout(tmp_path) == "folder"
    for i in range(len(data)):
        sample = data[i]
        assert sample.image.shape == (60, 80, 3) and sample.parts.shape == sample.objects.shape == (60, 80)
        labelled = sample.parts >= 0
        object_of = np.array([classes.objects.index(c.object) for c in classes.classes])
        assert np.array_equal(object_of[sample.parts[labelled]], sample.objects[labelled])  # parts lie in objects
        assert sample.intrinsics.width == 80 and sample.depth.dtype == np.float32
        assert (sample.depth[sample.objects >= 0] > 0.2).all()  # objects are on a table 0.5-0.85 m away
    assert not any(c.object == "kettle" for c in classes.seen)


def test_synthetic_scenes_cover_the_vocabulary_with_consistent_depth():
    classes = kitchen_classes()
    seen_classes, seen_objects = set(), set()
    for i in range(20):
        sample = make_scene(np.random.default_rng(i), classes, str(i), SceneConfig(120, 90, min_objects=3))
        seen_classes |= {int(c) for c in np.unique(sample.parts) if c >= 0}
        seen_objects |= set(sample.records())
        # a labelled pixel back-projected with the depth and intrinsics projects back onto itself
        v, u = np.argwhere(sample.parts >= 0)[0]
        point = sample.depth[v, u] * sample.intrinsics.rays()[v, u][None]
        assert np.allclose(sample.intrinsics.project(point), [[u, v]], atol=1e-3)
    assert len(seen_objects) == len(KITCHEN_PARTS)
    assert len(seen_classes) >= len(classes.classes) - 2  # small parts may hide behind others


@pytest.mark.parametrize("problem, message", [
    ("no classes", "no classes.txt"),
    ("bad class", "line 2"),
    ("no object", "names no object"),
    ("duplicate", "listed twice"),
    ("no split", "split 'train' not found"),
    ("no images", "no images"),
    ("no mask", "no part mask for 1 image"),
    ("size", "label map is 4x3, its image 8x6"),
    ("label", "unexpected label values \\[9\\]"),
    ("depth", "depth must be a uint16 PNG"),
    ("camera", "camera file needs numbers"),
])
def test_malformed_folders_give_clear_errors(tmp_path, problem, message):
    lines = {"bad class": "pot/handle\na/b/c\n", "no object": "pot/handle\nhandle\n",
             "duplicate": "pot/handle\npot's handle\n"}.get(problem, "pot/handle\npot/body\n")
    if problem != "no classes":
        (tmp_path / "classes.txt").write_text(lines)
    if problem != "no split":
        (tmp_path / "train" / "images").mkdir(parents=True)
    if problem not in ("no split", "no images"):
        _png(tmp_path / "train" / "images" / "a.png", np.zeros((6, 8, 3), np.uint8))
    if problem not in ("no split", "no images", "no mask"):
        mask = np.zeros((3, 4) if problem == "size" else (6, 8), np.uint8)
        mask[0, 0] = 9 if problem == "label" else 1
        _png(tmp_path / "train" / "parts" / "a.png", mask)
    if problem == "depth":
        _png(tmp_path / "train" / "depth" / "a.png", np.zeros((6, 8), np.uint8))
    if problem == "camera":
        (tmp_path / "train" / "camera").mkdir()
        (tmp_path / "train" / "camera" / "a.json").write_text('{"fx": 1}')
    with pytest.raises(DatasetError, match=message):
        FolderDataset(tmp_path, "train")[0]


def test_unknown_folders_and_layouts_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="not a dataset folder"):
        open_dataset(tmp_path, "train")
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "missing", "train")
    with pytest.raises(DatasetError, match="layout must be one of"):
        open_dataset(tmp_path, "train", layout="coco")
    with pytest.raises(DatasetError, match="PascalPart116 layout"):
        open_dataset(tmp_path, "train", layout="pascal-part-116")
    with pytest.raises(DatasetError, match="ADE20KPart234 layout"):
        open_dataset(tmp_path, "train", layout="ade20k-part-234")
