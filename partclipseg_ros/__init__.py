"""ROS 2 layer of partclipseg: nodes, message conversion, parameters. Only calls the core.

The generated interfaces (``partclipseg_ros.msg``, ``partclipseg_ros.srv``) are installed by the CMake build;
``extend_path`` lets a source checkout find them there.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
