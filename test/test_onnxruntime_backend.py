"""The ONNX Runtime backend against torch fp32, through the Segmenter (so labels and scores are compared too)."""
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import partclipseg.onnx.export
from conftest import make_tiny
from partclipseg.backends import BackendOptions, BackendUnavailable, make_backend
from partclipseg.factory import open_model
from partclipseg.cli import main
from partclipseg.defaults import CLIPSEG_BACKGROUND_LOGIT
from partclipseg.queries import QueryError
from partclipseg.segmenter import Segmenter

QUERY_SETS = [
    "handle",
    "pot/handle; knife/blade",
    "pot/handle; knife/blade; handle; cup/rim; jar/lid",
    "; ".join(f"object{i}/part{i}" for i in range(16)),  # Qmax distinct objects and parts: the largest row counts
    "; ".join(f"object{i % 3}/part{i}" for i in range(15)) + "; lid",
]


def near_ties(segmenter: Segmenter, image: np.ndarray, eps: float) -> np.ndarray:
    """Pixels whose Pred-All label the reference decides by less than ``eps`` (top two objects, or top two
    competing maps inside the winning object). Random weights give all prompts nearly the same map, so a few
    pixels are ties that float summation order alone decides."""
    plan = segmenter.plan
    out = segmenter.backend.decode(segmenter.encode_image(image).features, segmenter._state.tensors)

    def maps(channels) -> torch.Tensor:
        picked = [(out.main if c.source == "main" else out.pair)[0, c.index] for c in channels]
        return F.interpolate(torch.stack(picked)[None], size=image.shape[:2], mode="bilinear", align_corners=False)[0]

    def top_gap(stack: torch.Tensor) -> torch.Tensor:
        if len(stack) < 2:
            return torch.full(stack.shape[1:], torch.inf)
        top = stack.topk(2, dim=0).values
        return torch.nan_to_num(top[0] - top[1], nan=torch.inf, posinf=torch.inf)

    queries = maps(plan.query_channels)
    if plan.background_channel is None:  # plain CLIPSeg: queries against a constant logit
        return (top_gap(torch.cat([queries, torch.full_like(queries[:1], CLIPSEG_BACKGROUND_LOGIT)])) < eps).numpy()
    objects = maps(plan.object_channels)  # objects, then background
    winner = objects.argmax(0)
    competing = [q if o is None else q.masked_fill(winner != o, -torch.inf) for q, o in zip(queries, plan.query_objects)]
    background = maps([plan.background_channel])[0].masked_fill(winner != len(objects) - 1, -torch.inf)
    gap = torch.minimum(top_gap(objects), top_gap(torch.stack(competing + [background])))
    return (gap < eps).numpy()


def assert_same_results(reference: Segmenter, backend: Segmenter, image: np.ndarray, atol: float = 1e-4) -> None:
    want, got = reference.segment(image), backend.segment(image)
    assert float((got.logits - want.logits).abs().max()) <= atol
    ties = near_ties(reference, image, 10 * float((got.logits - want.logits).abs().max()) + 1e-7)
    assert ties.mean() < 2e-3  # a handful of pixels, not a way around the check
    assert np.array_equal(got.labels[~ties], want.labels[~ties])
    for a, b in zip(want.parts, got.parts):
        assert (a.query, a.label) == (b.query, b.label)
        assert abs(a.pixel_count - b.pixel_count) <= ties.sum() and abs(a.score - b.score) <= 1e-3


@pytest.mark.parametrize("arch", ["partclipseg", "clipseg"])
def test_matches_torch_for_1_to_qmax_queries(arch, onnx_cache, tiny_graphs, rgb_image):
    model = make_tiny(arch)
    torch_seg = Segmenter(model)
    ort_seg = Segmenter(model, make_backend("onnxruntime", model, BackendOptions(cache_dir=str(onnx_cache))))
    for queries in QUERY_SETS:
        torch_seg.set_queries(queries)
        ort_seg.set_queries(queries)
        assert_same_results(torch_seg, ort_seg, rgb_image)


def test_second_start_uses_the_cache(tiny_graphs, onnx_cache, monkeypatch):
    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache is valid")

    monkeypatch.setattr(partclipseg.onnx.export, "export_graphs", no_export)
    backend = make_backend("onnxruntime", make_tiny(), BackendOptions(cache_dir=str(onnx_cache)))
    assert backend.graphs == tiny_graphs
    assert str(tiny_graphs.folder) in backend.describe()


def test_too_many_rows_for_the_graphs_keeps_the_old_queries(tiny_graphs, onnx_cache, rgb_image):
    model = make_tiny()
    segmenter = Segmenter(model, make_backend("onnxruntime", model, BackendOptions(cache_dir=str(onnx_cache))), max_queries=20)
    segmenter.set_queries("pot/handle")
    with pytest.raises(QueryError, match="at most .*built for 16 queries"):
        segmenter.set_queries([f"object{i}/part{i}" for i in range(17)])
    assert [q.name for q in segmenter.queries] == ["pot/handle"]
    assert segmenter.segment(rgb_image).parts[0].query.name == "pot/handle"


def test_unavailable_configurations_say_why(tiny_model, onnx_cache, monkeypatch):
    with pytest.raises(BackendUnavailable, match="fp32, fp16 or int8"):
        make_backend("onnxruntime", tiny_model, BackendOptions(precision="bf16", cache_dir=str(onnx_cache)))
    with pytest.raises(BackendUnavailable, match="torch backend only"):
        make_backend("onnxruntime", tiny_model, BackendOptions(cuda_graphs=True))
    with pytest.raises(BackendUnavailable, match="unknown backend 'tflite'"):
        make_backend("tflite", tiny_model)
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match="torch sees none"):
            make_backend("onnxruntime", tiny_model, BackendOptions(device="cuda", cache_dir=str(onnx_cache)))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BackendUnavailable, match="onnxruntime package is not installed.*pip install"):
        make_backend("onnxruntime", tiny_model, BackendOptions(cache_dir=str(onnx_cache)))


def test_segment_command_with_onnxruntime(tiny_graphs, onnx_cache, tmp_path):
    """The CLI's random tiny weights are make_tiny()'s, so this start finds the session's cached export."""
    outputs = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / backend
        assert main(["segment", "--sample", "coffee", "--random-weights", "tiny", "--backend", backend,
                     "--cache-dir", str(onnx_cache), "--out", str(out)]) == 0
        outputs[backend] = cv2.imread(str(out / "labels.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(outputs["torch"], outputs["onnxruntime"])


@pytest.mark.slow
def test_full_size_random_model_matches_torch(tmp_path, rgb_image):
    model, _ = open_model(None, random_weights="full")
    torch_seg = Segmenter(model)
    ort_seg = Segmenter(model, make_backend("onnxruntime", model, BackendOptions(cache_dir=str(tmp_path))))
    for queries in ("pot/handle", QUERY_SETS[2]):
        torch_seg.set_queries(queries)
        ort_seg.set_queries(queries)
        assert_same_results(torch_seg, ort_seg, rgb_image)
