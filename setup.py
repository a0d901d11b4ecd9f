"""partclipseg (ROS-free core, pip-installable on its own) and partclipseg_ros (the ROS 2 layer).

``pip install .`` installs both Python packages; the ROS layer imports rclpy only when it is used. On a ROS 2
install the package is built with colcon (CMakeLists.txt: interfaces, launch, config, executables).
"""
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [
    line.strip()
    for line in (here / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith(("#", "-"))
]

setup(
    name="partclipseg",
    version="0.1.0",
    description="Open-vocabulary part segmentation (PartCLIPSeg) for robots: core library and ROS 2 node",
    long_description=(here / "README.md").read_text() if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["partclipseg", "partclipseg.*", "partclipseg_ros", "partclipseg_ros.*"]),
    package_data={"partclipseg": ["weights/*.pth", "affordances.yaml"]},
    install_requires=requirements,
    extras_require={
        "hf": ["transformers==5.24.0"],
        "trt": ["tensorrt>=10"],
    },
    entry_points={
        "console_scripts": [
            "partclipseg = partclipseg.cli:main",
            "partclipseg-ros = partclipseg_ros.cli:main",
        ]
    },
)
