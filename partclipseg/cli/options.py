"""Options shared by the commands: which weights, and the backend options (made from
:class:`~partclipseg.backends.BackendOptions`, so every backend option is a flag here with the same name)."""
from __future__ import annotations

import argparse
from typing import Any, Callable, Iterable

from ..backends import BACKEND_CHOICES, BACKENDS, BackendOptions
from ..defaults import AUTO
from ..backends.options import option_fields
from ..factory import RANDOM_SIZES, Weights, open_segmenter
from ..segmenter import Segmenter

ALIASES = {"rebuild_engines": ("--rebuild",)}  # build-engine's historical spelling


def bounded(kind: type, low: float, high: float) -> Callable[[str], Any]:
    """An argparse ``type`` that reads ``kind`` (int or float) and refuses values outside [low, high]."""
    def read(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not low <= value <= high:  # NaN fails too
            raise argparse.ArgumentTypeError(f"{text} is outside {low:g}..{high:g}")
        return value

    return read


def add_weights_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Which weights to load (every command that needs a model)."""
    group = parser.add_argument_group("model")
    group.add_argument("--checkpoint", help="official PartCLIPSeg .pth or HF CLIPSeg weights (never downloaded)")
    group.add_argument("--random-weights", choices=RANDOM_SIZES,
                       help="run random weights of this size instead of a checkpoint (outputs are marked)")
    group.add_argument("--trust-checkpoint", action="store_true",
                       help="allow full unpickling of checkpoints that hold more than tensors (trusted files only)")
    return group


def add_backend_arguments(group: argparse._ActionsContainer, only: Iterable[str] | None = None,
                          defaults: dict[str, Any] | None = None) -> None:
    """One flag per :class:`BackendOptions` field (``only`` some of them), with its help and default (the field's
    ``user_default`` unless ``defaults`` says otherwise)."""
    defaults = defaults or {}
    for spec in option_fields():
        if only is not None and spec.name not in only:
            continue
        flags = [f"--{spec.name.replace('_', '-')}", *ALIASES.get(spec.name, ())]
        default = defaults.get(spec.name, spec.metadata["user_default"])
        readers = spec.metadata["backends"]
        help_text = spec.metadata["help"] + ("" if readers == BACKENDS else f" [{', '.join(readers)}]")
        if isinstance(spec.default, bool):
            group.add_argument(*flags, dest=spec.name, action="store_true", help=help_text)
        else:
            choices = spec.metadata["choices"]
            group.add_argument(*flags, dest=spec.name, type=type(spec.default), default=default, choices=choices,
                               help=help_text)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Weights, backend and its options: every command that runs the model (docs/deployment.md)."""
    group = add_weights_arguments(parser)
    group.add_argument("--backend", default=AUTO, choices=BACKEND_CHOICES,
                       help="inference backend; auto: TensorRT or torch on a GPU, else ONNX Runtime on the CPU, "
                            "else torch (docs/deployment.md) (default: auto)")
    add_backend_arguments(group)


def weights(args: argparse.Namespace) -> Weights:
    return Weights(args.checkpoint or "", args.random_weights or "", args.trust_checkpoint)


def backend_options(args: argparse.Namespace) -> BackendOptions:
    """The :class:`BackendOptions` the parsed flags give (fields without a flag keep their defaults)."""
    return BackendOptions(**{spec.name: getattr(args, spec.name) for spec in option_fields() if hasattr(args, spec.name)})


def segmenter(args: argparse.Namespace, **segmenter_options: Any) -> tuple[Segmenter, str]:
    """The segmenter the model flags ask for, and the weights' description."""
    return open_segmenter(weights(args), args.backend, backend_options(args), **segmenter_options)
