"""``partclipseg export``: the image-encoder and decoder ONNX graphs (:mod:`partclipseg.model.stages`), validated on the
CPU, and a cache of them per model so that a backend's second start does not export again.

Export uses the default (dynamo) exporter at opset 18 with the 352 positional table baked into the weights (no
Resize in the graph) and the query-dependent rows as named dynamic dims bounded by ``max_queries``. Each graph is
constant-folded and then checked (:func:`partclipseg.onnx.checks.validate`): ONNX checker with full shape
inference, exactly the declared inputs/outputs/dims, nothing left to fold, TensorRT 10 operators only. fp16
graphs (:mod:`partclipseg.onnx.fp16`) are derived from the fp32 ones and checked the same way.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from ..defaults import MAX_QUERIES, ONNX_OPSET, default_cache_dir
from ..model.stages import (
    DecoderGraph, GraphSpec, ImageEncoderGraph, TextEncoderGraph, decoder_feeds, decoder_spec, encoder_spec,
    row_bounds, text_bounds, text_spec,
)
from ..model.network import PartCLIPSeg, QueryTensors, tokenize
from ..prompt_plan import PromptPlan
from ..queries import PartQuery

log = logging.getLogger(__name__)

EXPORT_FORMAT = 2  # bump when the graphs' interface changes: invalidates every cached export
GRAPH_PRECISIONS = ("fp32", "fp16", "int8")  # the exported graphs' precisions (int8: ONNX Runtime only)
STAGES = ("encoder", "decoder", "text")
# fp16 and int8 convert these; the text encoder stays fp32 at every precision: it runs only when the queries
# change, int8 text features cost the most label agreement (docs/deployment.md), and ONNX Runtime 1.32 crashes
# creating a fully optimised session for the fp16 text graph
PER_FRAME_STAGES = ("encoder", "decoder")


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

    @property
    def text(self) -> Path:
        return self.path("text")

    def path(self, stage: str) -> Path:
        return self.folder / f"{stage}.onnx"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (tensor versions, digest)


def model_fingerprint(model: PartCLIPSeg) -> str:
    """sha256 of the model's config and every weight (names, dtypes, shapes, bytes); remembered per model while no
    weight is replaced or changed in place (torch counts in-place changes per tensor)."""
    state = sorted(model.state_dict().items())
    versions = tuple((name, t.data_ptr(), t._version, t.device.type) for name, t in state)
    known = _FINGERPRINTS.get(model)
    if known is not None and known[0] == versions:
        return known[1]
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, tensor in state:
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy())
    _FINGERPRINTS[model] = (versions, digest.hexdigest())
    return digest.hexdigest()


def exporter_settings(precision: str, max_queries: int, opset: int) -> dict:
    """Everything besides the weights that changes the exported files."""
    import onnx
    import onnxscript

    settings = {
        "format": EXPORT_FORMAT,
        "precision": precision,
        "max_queries": max_queries,
        "opset": opset,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
    }
    if precision == "int8":
        import onnxruntime

        from .int8 import INT8_SETTINGS

        settings.update(onnxruntime=onnxruntime.__version__, int8=INT8_SETTINGS)
    return settings


def _example_query(model: PartCLIPSeg, max_queries: int) -> QueryTensors:
    """Query tensors with more than one row on every dynamic axis (export specialises size-1 dims)."""
    count = min(3, max_queries)
    queries = [PartQuery(f"part{i}", f"object{i}") for i in range(count - 1)] + [PartQuery("handle")]
    plan = PromptPlan.build(queries, model.config.is_part_model)
    features = torch.randn(plan.num_prompts - int(plan.background), model.config.projection_dim)
    return model.condition(features, plan)


def _example_tokens(model: PartCLIPSeg) -> torch.Tensor:
    """Three prompts' tokens cut to 7 (more than one, and different, sizes on both dynamic axes)."""
    return tokenize(["handle", "pot", "the lid of a pot"], model.config.context_length)[:, :7].to(torch.int32)


def _dynamic_shapes(spec: GraphSpec, max_queries: int, model: PartCLIPSeg) -> dict:
    bounds = row_bounds(model.config, max_queries).as_dict() | text_bounds(model.config, max_queries)
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
    """Export, fold and validate the graphs into ``out/<precision>/``; raises GraphError if one is not deployable."""
    from .checks import validate

    if any(p not in GRAPH_PRECISIONS for p in precisions):
        raise ValueError(f"ONNX precision must be one of {GRAPH_PRECISIONS}, got {precisions}")
    if max_queries < 2:
        raise ValueError(f"export needs max_queries >= 2 (dynamic row dims), got {max_queries}")
    model = model.eval()
    config = model.config
    specs = graph_specs(model)
    pixels = torch.randn(1, 3, config.image_size, config.image_size)
    with torch.no_grad():
        features = model.encode_image(pixels)
    feeds = decoder_feeds(features, _example_query(model, max_queries), config)
    args = {"encoder": (pixels,), "decoder": tuple(feeds.values()), "text": (_example_tokens(model),)}
    modules = {"encoder": ImageEncoderGraph(model), "decoder": DecoderGraph(model), "text": TextEncoderGraph(model)}
    fp32_folder = Path(out) / "fp32"
    fp32_folder.mkdir(parents=True, exist_ok=True)
    for stage in STAGES:
        dynamic = _dynamic_shapes(specs[stage], max_queries, model) if stage != "encoder" else None
        _export_one(modules[stage], args[stage], specs[stage], fp32_folder / f"{stage}.onnx", opset, dynamic)
        validate(fp32_folder / f"{stage}.onnx", specs[stage])
    fp32 = ExportedGraphs(fp32_folder, "fp32", max_queries, opset,
                          {stage: file_sha256(fp32_folder / f"{stage}.onnx") for stage in STAGES})
    result = {p: fp32 if p == "fp32" else derive_graphs(model, fp32, p, Path(out) / p) for p in precisions}
    if "fp32" not in precisions:
        shutil.rmtree(fp32_folder)
    return result


def graph_specs(model: PartCLIPSeg) -> dict[str, GraphSpec]:
    """Each stage's graph spec (names, dtypes, dims)."""
    config = model.config
    return {"encoder": encoder_spec(config), "decoder": decoder_spec(config), "text": text_spec(config)}


def derive_graphs(model: PartCLIPSeg, fp32: ExportedGraphs, precision: str, folder: Path) -> ExportedGraphs:
    """The fp16 (:mod:`.fp16`) or int8 (:mod:`.int8`, ONNX Runtime only) graphs made from the fp32 ones (the text
    encoder copied: :data:`PER_FRAME_STAGES`), validated, in ``folder``."""
    import onnx

    from .checks import validate
    from .fp16 import convert_to_fp16
    from .int8 import quantize_int8

    folder.mkdir(parents=True, exist_ok=True)
    specs = graph_specs(model)
    for stage in STAGES:
        path = folder / f"{stage}.onnx"
        if stage not in PER_FRAME_STAGES:
            shutil.copyfile(fp32.path(stage), path)
        elif precision == "fp16":
            onnx.save(convert_to_fp16(onnx.load(str(fp32.path(stage)))), str(path))
        else:
            log.info("quantizing the %s to int8 (ONNX Runtime dynamic quantization)", stage)
            quantize_int8(fp32.path(stage), path)
        validate(path, specs[stage], tensorrt=precision != "int8")
    sha = {stage: file_sha256(folder / f"{stage}.onnx") for stage in STAGES}
    return ExportedGraphs(folder, precision, fp32.max_queries, fp32.opset, sha)


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
    fingerprint: str | None = None,
) -> tuple[Path, dict]:
    """``<cache_dir>/onnx/<key>-<precision>`` and the settings hashed into the key (weights, config, exporter);
    ``fingerprint``: the model's :func:`model_fingerprint` when the caller has it."""
    settings = exporter_settings(precision, max_queries, opset)
    settings["model"] = fingerprint or model_fingerprint(model)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir or default_cache_dir()) / "onnx" / f"{key}-{precision}", settings


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold ``<folder>.lock``: processes starting together export once, and never read a folder being replaced."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def cached_graphs(
    model: PartCLIPSeg,
    cache_dir: Path | str | None = None,
    precision: str = "fp32",
    max_queries: int = MAX_QUERIES,
    opset: int = ONNX_OPSET,
    fingerprint: str | None = None,
) -> ExportedGraphs:
    """The model's graphs from ``<cache_dir>/onnx/<key>-<precision>/``, exported there first if missing or stale
    (fp16 and int8 are made from the cached fp32 export, which is exported first if needed).

    The key is a hash of the weights, the config and :func:`exporter_settings`; ``cache_dir`` defaults to
    :func:`partclipseg.defaults.default_cache_dir` ($PARTCLIPSEG_CACHE or ~/.cache/partclipseg).
    """
    fingerprint = fingerprint or model_fingerprint(model)
    folder, settings = cache_folder(model, cache_dir, precision, max_queries, opset, fingerprint)
    with _locked(folder):
        cached = _read_manifest(folder, settings)
        if cached is not None:
            log.info("using cached ONNX graphs in %s", folder)
            return cached
        log.warning("exporting the %s ONNX graphs of this model into %s (once per model and settings; about a "
                    "minute at full size)", precision, folder)
        start = time.perf_counter()
        fp32 = None if precision == "fp32" else cached_graphs(model, cache_dir, "fp32", max_queries, opset, fingerprint)
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".export-") as scratch:
            if fp32 is None:
                graphs = export_graphs(model, Path(scratch), (precision,), max_queries, opset)[precision]
            else:
                graphs = derive_graphs(model, fp32, precision, Path(scratch) / precision)
            sizes = {stage: graphs.path(stage).stat().st_size for stage in STAGES}
            manifest = {"settings": settings, "sha256": graphs.sha256, "sizes": sizes}
            (graphs.folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(graphs.folder, folder)
        log.warning("exported the %s ONNX graphs in %.0f s", precision, time.perf_counter() - start)
    return ExportedGraphs(folder, precision, max_queries, opset, graphs.sha256)
