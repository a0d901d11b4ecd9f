"""How to run a model: one options object for every backend, read by the CLI, the node, the benchmarks and the
engine builder alike. Each field names the backends that read it and carries its help text, from which the CLI
flags and the node parameters are made; a new option is a field here, its use in the backend, a CLI flag and a node
parameter, and nothing else.

``device`` and ``precision`` also take ``auto`` (the CLI's and the node's default, ``user_default``): resolved on
start-up by :mod:`partclipseg.auto`, with the per-checkpoint quality gate for reduced precision. The library's own
defaults are the exact ones (cpu, fp32).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..defaults import AUTO, MAX_QUERIES, PRECISIONS, TRT_WORKSPACE_MIB
from ..errors import BackendUnavailable

BACKENDS = ("torch", "onnxruntime", "tensorrt")
BACKEND_CHOICES = (AUTO,) + BACKENDS  # what the CLI and the node accept


def _option(default: Any, help: str, backends: tuple[str, ...] = BACKENDS, choices: tuple[str, ...] | None = None,
            limits: tuple[int, int] | None = None, strict: bool = True, user_default: Any = None) -> Any:
    """A field; ``strict``: other backends refuse it when set (else they ignore it, as a cache folder);
    ``user_default``: the CLI's and the node's default where it differs from the library's."""
    return field(default=default, metadata={"help": help, "backends": backends, "choices": choices,
                                            "limits": limits, "strict": strict,
                                            "user_default": default if user_default is None else user_default})


@dataclass(frozen=True)
class BackendOptions:
    """Everything a backend is built with besides the model (see each field's help)."""

    device: str = _option("cpu", "cpu, cuda[:N], or auto (cuda when torch sees a GPU)", user_default=AUTO)
    precision: str = _option("fp32", "auto (the fastest precision that keeps this checkpoint's labels, else fp32), "
                             "fp32 (exact), fp16 (CUDA), bf16 (torch) or int8 (onnxruntime on the CPU)",
                             choices=(AUTO,) + PRECISIONS, user_default=AUTO)
    max_queries: int = _option(MAX_QUERIES, "most queries served at once (the exported graphs' and engines' Qmax)",
                               limits=(1, MAX_QUERIES))
    cache_dir: str = _option("", "where onnxruntime/tensorrt keep exported graphs and engines ('' = "
                             "$PARTCLIPSEG_CACHE or ~/.cache/partclipseg)", ("onnxruntime", "tensorrt"), strict=False)
    torch_compile: bool = _option(False, "torch.compile the per-frame stages", ("torch",))
    cuda_graphs: bool = _option(False, "replay CUDA graphs per query-count bucket (device cuda)", ("torch",))
    engine_dir: str = _option("", "TensorRT engine folder ('' = beside the exported graphs under cache_dir)",
                              ("tensorrt",))
    rebuild_engines: bool = _option(False, "rebuild the TensorRT engines even when the cached ones match",
                                    ("tensorrt",))
    workspace_mib: int = _option(TRT_WORKSPACE_MIB, "TensorRT builder workspace limit (MiB)", ("tensorrt",),
                                 limits=(64, 1 << 20))

    def check(self, backend: str) -> None:
        """Refuse a backend name, a precision, or an option another backend reads (set away from its default)."""
        if backend not in BACKEND_CHOICES:
            raise BackendUnavailable(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_CHOICES)}")
        if self.precision not in (AUTO,) + PRECISIONS:
            raise BackendUnavailable(f"unknown precision {self.precision!r}; choose one of "
                                     f"{', '.join((AUTO,) + PRECISIONS)}")
        for spec in dataclasses.fields(self):
            readers = spec.metadata["backends"]
            if backend == AUTO and readers == BACKENDS:
                continue
            if spec.metadata["strict"] and backend not in readers and getattr(self, spec.name) != spec.default:
                raise BackendUnavailable(f"{spec.name} is an option of the {' and '.join(readers)} backend only, "
                                         f"not of {backend}")

    def replace(self, **changes: Any) -> "BackendOptions":
        return dataclasses.replace(self, **changes)

    @property
    def automatic(self) -> bool:
        """Whether the device or the precision is left to :mod:`partclipseg.auto`."""
        return AUTO in (self.device, self.precision)


def option_fields() -> tuple[dataclasses.Field, ...]:
    """The options with their metadata (help, backends, choices, limits), for CLI flags and node parameters."""
    return dataclasses.fields(BackendOptions)
