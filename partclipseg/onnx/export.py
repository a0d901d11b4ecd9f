"""``partclipseg export``: the image-encoder and decoder ONNX graphs (:mod:`partclipseg.model.stages`), validated on the
CPU, and a cache of them per model so that a backend's second start does not export again.

Export uses the default (dynamo) exporter at opset 18 with the 352 positional table baked into the weights (no
Resize in the graph) and the query-dependent rows as named dynamic dims bounded by ``max_queries``. Each graph is
constant-folded and then checked (:func:`partclipseg.onnx.checks.validate`): ONNX checker with full shape
inference, exactly the declared inputs/outputs/dims, nothing left to fold, TensorRT 10 operators only. fp16
graphs (:mod:`partclipseg.onnx.fp16`) are derived from the fp32 ones and checked the same way.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..defaults import MAX_QUERIES, ONNX_OPSET, default_cache_dir
from ..model.stages import (
    DecoderGraph, GraphSpec, ImageEncoderGraph, decoder_feeds, decoder_spec, encoder_spec, row_bounds,
)
from ..model.network import PartCLIPSeg, QueryTensors
from ..prompt_plan import PromptPlan
from ..queries import PartQuery

log = logging.getLogger(__name__)

EXPORT_FORMAT = 1  # bump when the graphs' interface changes: invalidates every cached export
GRAPH_PRECISIONS = ("fp32", "fp16")  # the exported graphs' precisions
STAGES = ("encoder", "decoder")


@dataclass(frozen=True)
class ExportedGraphs:
    """The two graphs of one model at one precision, with the sha256 of each file (the engine cache key uses it)."""

    folder: Path
    precision: str
    max_queries: int
    opset: int
    sha256: dict[str, str]  # stage -> file hash

    @property
    def encoder(self) -> Path:
        return self.path("encoder")

    @property
    def decoder(self) -> Path:
        return self.path("decoder")

    def path(self, stage: str) -> Path:
        return self.folder / f"{stage}.onnx"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def model_fingerprint(model: PartCLIPSeg) -> str:
    """sha256 of the model's config and every weight (names, dtypes, shapes, bytes)."""
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def exporter_settings(precision: str, max_queries: int, opset: int) -> dict:
    """Everything besides the weights that changes the exported files."""
    import onnx
    import onnxscript

    return {
        "format": EXPORT_FORMAT,
        "precision": precision,
        "max_queries": max_queries,
        "opset": opset,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
    }


def _example_query(model: PartCLIPSeg, max_queries: int) -> QueryTensors:
    """Query tensors with more than one row on every dynamic axis (export specialises size-1 dims)."""
    count = min(3, max_queries)
    queries = [PartQuery(f"part{i}", f"object{i}") for i in range(count - 1)] + [PartQuery("handle")]
    plan = PromptPlan.build(queries, model.config.is_part_model)
    features = torch.randn(plan.num_prompts - int(plan.background), model.config.projection_dim)
    return model.condition(features, plan)


def _dynamic_shapes(spec: GraphSpec, max_queries: int, model: PartCLIPSeg) -> dict:
    bounds = row_bounds(model.config, max_queries).as_dict()
    dims = {axis: torch.export.Dim(axis, min=1, max=bounds[axis]) for axis in bounds if bounds[axis] >= 1}
    return {t.name: {i: dims[a] for i, a in t.dynamic_axes.items()} or None for t in spec.inputs}


def _export_one(module: torch.nn.Module, args: tuple, spec: GraphSpec, path: Path, opset: int, dynamic: dict | None) -> None:
    import onnx

    from .checks import fold_constants

    start = time.perf_counter()
    log.info("exporting %s to %s (opset %d)", spec.name, path, opset)
    with torch.no_grad(), warnings.catch_warnings():
        # film_mul/film_add (and the pair tensors) share their row axis: the exporter says so once per tensor
        warnings.filterwarnings("ignore", message="# The axis name")
        program = torch.onnx.export(
            module.eval(), args, dynamo=True, opset_version=opset, input_names=spec.input_names,
            output_names=spec.output_names, dynamic_shapes=dynamic, optimize=True, verbose=False,
        )
    onnx.save(fold_constants(program.model_proto), str(path))
    log.info("exported %s in %.1f s (%.0f MiB)", spec.name, time.perf_counter() - start, path.stat().st_size / 2**20)


def export_graphs(
    model: PartCLIPSeg,
    out: Path,
    precisions: tuple[str, ...] = ("fp32",),
    max_queries: int = MAX_QUERIES,
    opset: int = ONNX_OPSET,
) -> dict[str, ExportedGraphs]:
    """Export, fold and validate both graphs into ``out/<precision>/``; raises GraphError if one is not deployable."""
    import onnx

    from .checks import validate
    from .fp16 import convert_to_fp16

    if any(p not in GRAPH_PRECISIONS for p in precisions):
        raise ValueError(f"ONNX precision must be one of {GRAPH_PRECISIONS}, got {precisions}")
    if max_queries < 2:
        raise ValueError(f"export needs max_queries >= 2 (dynamic row dims), got {max_queries}")
    model = model.eval()
    config = model.config
    specs = {"encoder": encoder_spec(config), "decoder": decoder_spec(config)}
    pixels = torch.randn(1, 3, config.image_size, config.image_size)
    with torch.no_grad():
        features = model.encode_image(pixels)
    feeds = decoder_feeds(features, _example_query(model, max_queries), config)
    args = {"encoder": (pixels,), "decoder": tuple(feeds.values())}
    modules = {"encoder": ImageEncoderGraph(model), "decoder": DecoderGraph(model)}
    fp32_folder = Path(out) / "fp32"
    fp32_folder.mkdir(parents=True, exist_ok=True)
    for stage in STAGES:
        dynamic = _dynamic_shapes(specs[stage], max_queries, model) if stage == "decoder" else None
        _export_one(modules[stage], args[stage], specs[stage], fp32_folder / f"{stage}.onnx", opset, dynamic)
        validate(fp32_folder / f"{stage}.onnx", specs[stage])
    result = {}
    for precision in precisions:
        folder = Path(out) / precision
        folder.mkdir(parents=True, exist_ok=True)
        if precision == "fp16":
            for stage in STAGES:
                onnx.save(convert_to_fp16(onnx.load(str(fp32_folder / f"{stage}.onnx"))), str(folder / f"{stage}.onnx"))
                validate(folder / f"{stage}.onnx", specs[stage])
        sha = {stage: file_sha256(folder / f"{stage}.onnx") for stage in STAGES}
        result[precision] = ExportedGraphs(folder, precision, max_queries, opset, sha)
    if "fp32" not in precisions:
        shutil.rmtree(fp32_folder)
    return result


def _read_manifest(folder: Path, settings: dict) -> ExportedGraphs | None:
    """The cached export in ``folder`` if its manifest matches ``settings`` and every file is there at its size."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest["settings"] != settings:
            return None
        for stage in STAGES:
            if (folder / f"{stage}.onnx").stat().st_size != manifest["sizes"][stage]:
                return None
        return ExportedGraphs(folder, settings["precision"], settings["max_queries"], settings["opset"], manifest["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cache_folder(
    model: PartCLIPSeg,
    cache_dir: Path | str | None = None,
    precision: str = "fp32",
    max_queries: int = MAX_QUERIES,
    opset: int = ONNX_OPSET,
) -> tuple[Path, dict]:
    """``<cache_dir>/onnx/<key>-<precision>`` and the settings hashed into the key (weights, config, exporter)."""
    settings = exporter_settings(precision, max_queries, opset)
    settings["model"] = model_fingerprint(model)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir or default_cache_dir()) / "onnx" / f"{key}-{precision}", settings


def cached_graphs(
    model: PartCLIPSeg,
    cache_dir: Path | str | None = None,
    precision: str = "fp32",
    max_queries: int = MAX_QUERIES,
    opset: int = ONNX_OPSET,
) -> ExportedGraphs:
    """The model's graphs from ``<cache_dir>/onnx/<key>/``, exported there first if missing or stale.

    The key is a hash of the weights, the config and :func:`exporter_settings`; ``cache_dir`` defaults to
    :func:`partclipseg.defaults.default_cache_dir` ($PARTCLIPSEG_CACHE or ~/.cache/partclipseg).
    """
    folder, settings = cache_folder(model, cache_dir, precision, max_queries, opset)
    cached = _read_manifest(folder, settings)
    if cached is not None:
        log.info("using cached ONNX graphs in %s", folder)
        return cached
    log.info("no valid cached ONNX export for this model in %s: exporting (once per model and settings)", folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".export-") as scratch:
        graphs = export_graphs(model, Path(scratch), (precision,), max_queries, opset)[precision]
        sizes = {stage: graphs.path(stage).stat().st_size for stage in STAGES}
        manifest = {"settings": settings, "sha256": graphs.sha256, "sizes": sizes}
        (graphs.folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(graphs.folder, folder)
    return ExportedGraphs(folder, precision, max_queries, opset, graphs.sha256)

