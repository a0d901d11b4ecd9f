"""The rclpy side of the commands that drive a node in another process (bench, bench --delivery / --cameras,
stress): a node in a context of its own, spun by its own executor."""
from __future__ import annotations

import subprocess
import time
from typing import Callable


class Client:
    """An rclpy node ``name`` in its own context; subclasses add their publishers and subscriptions."""

    def __init__(self, name: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin(self, seconds: float) -> None:
        """Handle messages for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)

    def spin_until(self, condition: Callable[[], bool], timeout: float, what: str, process: subprocess.Popen) -> None:
        """Handle messages until ``condition()``; RuntimeError after ``timeout`` s or when ``process`` (the node)
        exits."""
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end or process.poll() is not None:
                raise RuntimeError(f"no {what} within {timeout:.0f} s (node exit status {process.poll()})")
            self.executor.spin_once(timeout_sec=0.02)

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
