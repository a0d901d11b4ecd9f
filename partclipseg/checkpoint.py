"""Checkpoint import and export.

Reads the official PartCLIPSeg files (detectron2 layout: ``{"model": state_dict, "iteration": ..., ...}``, keys
prefixed ``partclipseg_model.``, HF CLIP names, q/k/v separate) and HF CLIPSeg files
(``CIDAS/clipseg-rd64-refined``: same names, no prefix, no part branch), infers every size from the tensors and
maps them onto :class:`~partclipseg.model.PartCLIPSeg`. Every missing, unexpected or misshaped key is collected
into one :class:`CheckpointError`; a model is only returned when everything fit. Weights are never downloaded.

:func:`save_official` writes the official layout back (training checkpoints use it too), so what this
package trains loads wherever the released weights load.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from .errors import CheckpointError
from .defaults import weights_hint
from .model.config import ModelConfig
from .model.network import PartCLIPSeg
from .model_vocabulary import CLOSED, KINDS, OPEN
from .queries import PartQuery, QueryError, parse_query

PREFIX = "partclipseg_model."
_V = "clip.vision_model."
_T = "clip.text_model."
# Official tensors that do not influence the masks: read and dropped on import, regenerated on export.
_INERT = {
    _V + "embeddings.position_ids",
    _T + "embeddings.position_ids",
    "text_adapter.fc.0.weight",
    "text_adapter.fc.2.weight",
    "tunable_linear.weight",
}



@dataclass(frozen=True)
class _Rule:
    """Our state-dict key <- official key(s): "copy", "transpose" (Linear weight vs open_clip projection) or
    "concat" (separate q/k/v -> open_clip's in_proj)."""

    ours: str
    theirs: tuple[str, ...]
    kind: str = "copy"


def _block_rules(ours: str, theirs: str) -> list[_Rule]:
    rules = [
        _Rule(ours + "attn.in_proj_" + p, tuple(f"{theirs}self_attn.{n}_proj.{p}" for n in "qkv"), "concat")
        for p in ("weight", "bias")
    ]
    pairs = [("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
             ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")]
    rules += [_Rule(f"{ours}{a}.{p}", (f"{theirs}{b}.{p}",)) for a, b in pairs for p in ("weight", "bias")]
    return rules


def _rules(model: PartCLIPSeg) -> list[_Rule]:
    config = model.config
    rules = [
        _Rule("clip.visual.class_embedding", (_V + "embeddings.class_embedding",)),
        _Rule("clip.visual.conv1.weight", (_V + "embeddings.patch_embedding.weight",)),
        _Rule("source_positions", (_V + "embeddings.position_embedding.weight",)),
        _Rule("clip.visual.proj", ("clip.visual_projection.weight",), "transpose"),
        _Rule("clip.token_embedding.weight", (_T + "embeddings.token_embedding.weight",)),
        _Rule("clip.positional_embedding", (_T + "embeddings.position_embedding.weight",)),
        _Rule("clip.text_projection", ("clip.text_projection.weight",), "transpose"),
        _Rule("clip.logit_scale", ("clip.logit_scale",)),
    ]
    for ours, theirs in (("clip.visual.ln_pre", _V + "pre_layrnorm"), ("clip.visual.ln_post", _V + "post_layernorm"),
                         ("clip.ln_final", _T + "final_layer_norm")):
        rules += [_Rule(f"{ours}.{p}", (f"{theirs}.{p}",)) for p in ("weight", "bias")]
    for i in range(config.vision_layers):
        rules += _block_rules(f"clip.visual.transformer.resblocks.{i}.", f"{_V}encoder.layers.{i}.")
    for i in range(config.text_layers):
        rules += _block_rules(f"clip.transformer.resblocks.{i}.", f"{_T}encoder.layers.{i}.")
    own = ("decoder.", "visual_adapter.", "non_object_embedding")
    rules += [_Rule(k, (k,)) for k in model.state_dict() if k.startswith(own)]
    return rules


def _expected_shapes(rule: _Rule, ours: torch.Tensor) -> list[tuple[int, ...]]:
    shape = tuple(ours.shape)
    if rule.kind == "transpose":
        return [shape[::-1]]
    if rule.kind == "concat":
        return [(shape[0] // 3, *shape[1:])] * 3
    return [shape]


# ----------------------------------------------------------------------------------------------- reading


# What a file that is not a checkpoint usually is, by its first bytes (a saved download page is the common case).
_SIGNATURES = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"), (b"%PDF", "a PDF document"), (b"\x1f\x8b", "gzip-compressed data (unpack it first)"),
    (b"\x7fELF", "a program"), (b"<!doctype html", "a web page (a download link saved instead of the file)"),
    (b"<html", "a web page (a download link saved instead of the file)"),
)


def _first_line(err: BaseException, limit: int = 160) -> str:
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return line if len(line) <= limit else line[:limit] + "..."


def _what_it_is(head: bytes) -> str:
    """What a file that is not a PyTorch checkpoint looks like, from its first bytes."""
    lowered = head.lstrip().lower()
    for signature, name in _SIGNATURES:
        if head.startswith(signature) or lowered.startswith(signature):
            return name
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "unrecognised binary data"
    printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
    return "a text file" if printable >= 0.95 * max(1, len(text)) else "unrecognised binary data"


def _read(path: Path, trust: bool) -> Any:
    """The object in a checkpoint file; :class:`CheckpointError` names what a wrong file is: missing, empty,
    truncated, not a PyTorch checkpoint at all (the trust advice only for genuine pickles holding objects)."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}\n{weights_hint()}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes): the download or copy did not finish; get it again")
    with open(path, "rb") as file:
        head = file.read(64)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path}: not a readable safetensors file: the file is truncated or corrupt "
                                  f"({_first_line(err)}); get it again") from err
    if head.startswith(b"PK\x03\x04"):
        kind = "zip"  # torch.save's format
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path}: the file is truncated: a PyTorch checkpoint is a zip archive, and this one "
                                  f"ends after {size} bytes without the archive's directory; get it again")
    elif len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        kind = "pickle"  # torch.save's legacy format (a pickle stream)
    else:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint: it looks like {_what_it_is(head)} ({size} bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for bad files
        if "Weights only load failed" in str(err) and _intact(path, kind):
            raise CheckpointError(
                f"{path}: holds Python objects beyond tensors, which are not loaded by default because unpickling can "
                "run code. If you trust the file, load it with trust=True (CLI: --trust-checkpoint)."
            ) from err
        raise CheckpointError(f"{path}: a PyTorch checkpoint that cannot be read: the file is truncated or corrupt "
                              f"({_first_line(err)}); get it again") from err


def _intact(path: Path, kind: str) -> bool:
    """Whether a file that torch refused to unpickle safely is a complete pickle (then only trust would load it)."""
    if kind == "zip":
        try:
            with zipfile.ZipFile(path) as archive:
                return archive.testzip() is None and any(n.endswith("data.pkl") for n in archive.namelist())
        except (zipfile.BadZipFile, OSError):
            return False
    import pickletools

    try:
        with open(path, "rb") as file:
            for _ in pickletools.genops(file):
                pass
    except Exception:  # noqa: BLE001 - any failure to walk the opcodes means a broken stream
        return False
    return True


def _state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj = obj["model"]
    elif isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: not a checkpoint: expected a dict of tensors (or one under 'model'), got {type(obj).__name__}")
    tensors = {k.removeprefix("module."): v for k, v in obj.items() if isinstance(k, str) and torch.is_tensor(v)}
    if not tensors:
        raise CheckpointError(f"{path}: not a checkpoint: no tensors among its {len(obj)} entries")
    return tensors


def _detect(sd: Mapping[str, torch.Tensor], path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """-> (arch, state dict without the official prefix)."""
    if any(k.startswith(PREFIX) for k in sd):
        stripped = {k.removeprefix(PREFIX): v for k, v in sd.items()}
        return ("partclipseg" if "decoder.part_obj_mlp.0.weight" in stripped else "clipseg"), stripped
    if "decoder.transposed_convolution.weight" in sd:
        raise CheckpointError(
            f"{path}: a CLIPSeg with the simple (non-refined) head, e.g. CIDAS/clipseg-rd64; only the refined head "
            f"is supported (CIDAS/clipseg-rd64-refined, which PartCLIPSeg builds on).\n{weights_hint()}"
        )
    has_clip = any(k.startswith(_V) for k in sd)
    if has_clip and any(k.startswith("decoder.") for k in sd):
        part = "decoder.part_obj_mlp.0.weight" in sd or "non_object_embedding" in sd
        return ("partclipseg" if part else "clipseg"), dict(sd)
    if any(k.startswith(("vision_model.", "text_model.", "visual.", "transformer.resblocks.")) for k in sd) or has_clip:
        raise CheckpointError(
            f"{path}: this is a plain CLIP checkpoint (no segmentation decoder). PartCLIPSeg needs its own file.\n{weights_hint()}"
        )
    if any(k.startswith(("trans_conv", "film_mul", "reduces.")) for k in sd):
        raise CheckpointError(
            f"{path}: this looks like an original (timojl/clipseg) CLIPSeg file, which holds only the decoder. "
            f"Use the Hugging Face conversion (CIDAS/clipseg-rd64-refined) instead.\n{weights_hint()}"
        )
    sample = ", ".join(list(sd)[:3])
    raise CheckpointError(f"{path}: no PartCLIPSeg or CLIPSeg keys found (first keys: {sample}).\n{weights_hint()}")


def _count(sd: Mapping[str, Any], pattern: str) -> int:
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in sd if (m := regex.match(k))}
    return max(found) + 1 if found else 0


def infer_config(sd: Mapping[str, torch.Tensor], arch: str) -> ModelConfig:
    """Read every size off the tensors (unprefixed official names); heads = width // 64 as in CLIP."""
    needed = {
        "vision": _V + "embeddings.class_embedding",
        "patch": _V + "embeddings.patch_embedding.weight",
        "positions": _V + "embeddings.position_embedding.weight",
        "tokens": _T + "embeddings.token_embedding.weight",
        "context": _T + "embeddings.position_embedding.weight",
        "vision_mlp": _V + "encoder.layers.0.mlp.fc1.weight",
        "text_mlp": _T + "encoder.layers.0.mlp.fc1.weight",
        "projection": "clip.text_projection.weight",
        "film": "decoder.film_mul.weight",
        "decoder_mlp": "decoder.layers.0.mlp.fc1.weight",
    }
    if arch == "partclipseg":
        needed["adapter"] = "visual_adapter.fc.0.weight"
    missing = [key for key in needed.values() if key not in sd]
    if missing:
        raise CheckpointError("cannot read the model size, these keys are missing:\n  " + "\n  ".join(missing))
    t = {name: sd[key] for name, key in needed.items()}
    grid = int(round((t["positions"].shape[0] - 1) ** 0.5))
    values: dict[str, Any] = dict(
        arch=arch,
        vision_width=t["vision"].shape[0],
        vision_layers=_count(sd, re.escape(_V) + r"encoder\.layers\.(\d+)\."),
        vision_mlp=t["vision_mlp"].shape[0],
        patch_size=t["patch"].shape[-1],
        source_grid=grid,
        text_width=t["tokens"].shape[1],
        text_layers=_count(sd, re.escape(_T) + r"encoder\.layers\.(\d+)\."),
        text_mlp=t["text_mlp"].shape[0],
        vocab_size=t["tokens"].shape[0],
        context_length=t["context"].shape[0],
        projection_dim=t["projection"].shape[0],
        reduce_dim=t["film"].shape[0],
        decoder_mlp=t["decoder_mlp"].shape[0],
    )
    if arch == "partclipseg":
        values["adapter_hidden"] = t["adapter"].shape[0]
        values["part_obj_mlp_layers"] = 2 if "decoder.part_obj_mlp.2.weight" in sd else 1
    try:
        return ModelConfig(**values)
    except ValueError as err:
        raise CheckpointError(f"the tensors describe an unsupported model: {err}") from err


def load_checkpoint(path: str | Path, expect: str | None = None, trust: bool = False) -> PartCLIPSeg:
    """Load an official PartCLIPSeg or HF CLIPSeg checkpoint into a new model (eval mode, CPU, fp32).

    ``expect`` ("partclipseg" or "clipseg") refuses the other kind with a clear message. ``trust`` allows
    full unpickling for files that hold more than tensors (only for files you trust).
    """
    path = Path(path)
    raw = _read(path, trust)
    arch, sd = _detect(_state_dict(raw, path), path)
    if expect is not None and arch != expect:
        found = "a plain CLIPSeg checkpoint (no part branch)" if arch == "clipseg" else "a PartCLIPSeg checkpoint"
        raise CheckpointError(f"{path}: expected a {expect} checkpoint, found {found}.\n{weights_hint()}")
    model = model_from_state_dict(sd, arch, source=str(path))
    if arch == "partclipseg":
        model.trained_classes = _trained_classes(raw, path)
    model.vocabulary = _vocabulary(raw, model.trained_classes, path)
    return model


def _vocabulary(raw: Any, classes: tuple[PartQuery, ...], path: Path) -> str:
    """The ``vocabulary`` mark ("open" or "closed"); without one: closed when the file lists its ``classes``
    (written by this package's trainer before the mark existed), else open (the official files)."""
    mark = raw.get("vocabulary") if isinstance(raw, Mapping) else None
    if mark is None:
        return CLOSED if classes else OPEN
    if mark not in KINDS:
        raise CheckpointError(f"{path}: its 'vocabulary' entry must be one of {', '.join(KINDS)}, got {mark!r}")
    if mark == CLOSED and not classes:
        raise CheckpointError(f"{path}: marked closed-vocabulary but lists no 'classes' (what it was trained on)")
    return mark


def _trained_classes(raw: Any, path: Path) -> tuple[PartQuery, ...]:
    """The ``classes`` entry that this package's trainer writes beside the weights (the official files have none)."""
    names = raw.get("classes") if isinstance(raw, Mapping) else None
    if names is None:
        return ()
    try:
        classes = tuple(parse_query(name) for name in names)
    except (TypeError, QueryError) as err:
        raise CheckpointError(f"{path}: its 'classes' entry is not a list of object/part names ({err})") from err
    if any(c.object is None for c in classes):
        raise CheckpointError(f"{path}: its 'classes' entry names a part without its object")
    return classes


def model_from_state_dict(sd: Mapping[str, torch.Tensor], arch: str, source: str = "state dict") -> PartCLIPSeg:
    """Build a model whose sizes are read off ``sd`` (unprefixed official names) and load it, all or nothing."""
    config = infer_config(sd, arch)
    model = PartCLIPSeg(config)
    ours = model.state_dict()
    rules = _rules(model)
    used: set[str] = set()
    missing: list[str] = []
    misshaped: list[str] = []
    new_state: dict[str, torch.Tensor] = {}
    for rule in rules:
        shapes = _expected_shapes(rule, ours[rule.ours])
        parts = []
        for key, shape in zip(rule.theirs, shapes):
            used.add(key)
            if key not in sd:
                missing.append(key)
            elif tuple(sd[key].shape) != shape:
                misshaped.append(f"{key}: {tuple(sd[key].shape)}, expected {shape}")
            else:
                parts.append(sd[key].float())
        if len(parts) == len(rule.theirs):
            if rule.kind == "transpose":
                new_state[rule.ours] = parts[0].T.contiguous()
            elif rule.kind == "concat":
                new_state[rule.ours] = torch.cat(parts)
            else:
                new_state[rule.ours] = parts[0]
    unexpected = sorted(k for k in sd if k not in used and k not in _INERT)
    if missing or misshaped or unexpected:
        lines = [f"{source}: does not match a {arch} model of the sizes its tensors describe ({_describe(config)}):"]
        for title, items in (("missing", missing), ("misshaped", misshaped), ("unexpected", unexpected)):
            if items:
                lines.append(f"  {len(items)} {title}: " + "; ".join(items[:8]) + (" ..." if len(items) > 8 else ""))
        lines.append("Nothing was loaded. Is this file a complete, unmodified PartCLIPSeg/CLIPSeg checkpoint?")
        raise CheckpointError("\n".join(lines))
    new_state["clip.visual.positional_embedding"] = ours["clip.visual.positional_embedding"]
    model.load_state_dict(new_state, strict=True)
    model.set_source_positions(new_state["source_positions"])
    return model.eval()


def _describe(config: ModelConfig) -> str:
    return (f"vision {config.vision_width}x{config.vision_layers}, text {config.text_width}x{config.text_layers}, "
            f"decoder {config.reduce_dim}/{config.decoder_mlp}")


# ----------------------------------------------------------------------------------------------- writing


def official_state_dict(model: PartCLIPSeg) -> dict[str, torch.Tensor]:
    """Our weights under the official names (prefixed for PartCLIPSeg, bare HF CLIPSeg names otherwise)."""
    ours = model.state_dict()
    config = model.config
    out: dict[str, torch.Tensor] = {}
    for rule in _rules(model):
        tensor = ours[rule.ours].detach().cpu()
        if rule.kind == "transpose":
            out[rule.theirs[0]] = tensor.T.contiguous()
        elif rule.kind == "concat":
            for key, piece in zip(rule.theirs, tensor.chunk(3)):
                out[key] = piece.clone()
        else:
            out[rule.theirs[0]] = tensor.clone()
    out[_V + "embeddings.position_ids"] = torch.arange(config.source_grid**2 + 1)[None]
    out[_T + "embeddings.position_ids"] = torch.arange(config.context_length)[None]
    if not config.is_part_model:
        return out
    proj = config.projection_dim
    # Inert in the released model (text_adapter(e) * 0.0 + e; tunable_linear unused): written as zeros.
    out["text_adapter.fc.0.weight"] = torch.zeros(proj // 4, proj)
    out["text_adapter.fc.2.weight"] = torch.zeros(proj, proj // 4)
    out["tunable_linear.weight"] = torch.zeros(1000, proj)
    return {PREFIX + k: v for k, v in out.items()}


def save_official(
    model: PartCLIPSeg, path: str | Path, iteration: int = 0, dtype: torch.dtype | None = None, **extra: Any
) -> Path:
    """Write ``{"model": official state dict, "iteration": ..., **extra}`` (detectron2 layout), plus the model's
    ``trained_classes`` as ``"classes"`` and its ``vocabulary`` ("open" or "closed") when it has them (the loader
    reads them back); ``dtype`` (e.g. torch.float16, to ship small files) converts the floating-point tensors; the
    loader casts back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = official_state_dict(model)
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    classes = {"classes": [c.name for c in model.trained_classes]} if model.trained_classes else {}
    vocabulary = {"vocabulary": model.vocabulary} if model.vocabulary else {}
    torch.save({"model": state, "iteration": iteration, **classes, **vocabulary, **extra}, tmp)
    tmp.replace(path)
    return path

