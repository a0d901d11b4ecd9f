"""The errors a user of the library, the CLI or the node is meant to read: each message says what was wrong and
what to do. Everything else that escapes is a bug, reported with its traceback."""
from __future__ import annotations


class UserError(Exception):
    """Base of the errors below: bad input, files or settings, explained in the message."""


class QueryError(UserError, ValueError):
    """A query string that cannot be used; the message says what was wrong and how to write it."""


class NoQueries(QueryError):
    """No query set is active: segmenting needs one (``set_queries``)."""


class AffordanceError(UserError, ValueError):
    """An affordance file that cannot be used; the message names the file and the entry."""


class ImageError(UserError, ValueError):
    """An image the model cannot take; the message says what was wrong and what to send instead."""


class CheckpointError(UserError, ValueError):
    """A file that cannot be loaded as the requested model; the message lists every problem and what to do."""


class BackendUnavailable(UserError, RuntimeError):
    """A backend that cannot run here; the message says why and what to install."""


class EngineError(UserError, RuntimeError):
    """A TensorRT engine that cannot be built or loaded; the message says why."""


class GraphError(UserError, ValueError):
    """An exported ONNX graph that fails validation; the message lists every problem."""


class CameraError(UserError, ValueError):
    """Intrinsics that cannot be used (e.g. an uncalibrated camera_info with K all zero)."""


class GeometryInputError(UserError, ValueError):
    """Depth, mask or intrinsics that cannot be combined; the message says what was wrong and what to do."""


class CloudError(UserError, ValueError):
    """A PointCloud2 layout this package does not understand."""


class DatasetError(UserError, ValueError):
    """A dataset folder that cannot be read; the message says what was expected."""


# What the CLI turns into one "error: ..." line (exit status 2) and the node into one warning: the errors above,
# a missing file, and ValueError, which the standard library and numpy raise for bad values given by the user.
EXPECTED_ERRORS = (UserError, FileNotFoundError, ValueError)
