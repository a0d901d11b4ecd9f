"""Where the package's share files are, and the DDS environment every start-up path of this package sets.

No rclpy import here: these must run before rclpy creates its first DDS participant.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import MutableMapping

PACKAGE = "partclipseg_ros"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_path(*parts: str) -> Path:
    """A file from launch/ or config/: in this source checkout, else in the installed package's share dir."""
    local = _SOURCE_ROOT.joinpath(*parts)
    if local.exists():
        return local
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE)).joinpath(*parts)


def use_shm_profile(env: MutableMapping[str, str] = os.environ) -> None:
    """Select config/fastdds_shm.xml (8 MB shared-memory segments, needed for images > 512 KB) unless the user
    already chose a Fast DDS profile."""
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(share_path("config", "fastdds_shm.xml")))


def keep_dds_local(env: MutableMapping[str, str] = os.environ) -> None:
    """For self-contained runs (demo, benchmark): discovery on this machine only, and a domain of their own,
    unless the user set either."""
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
