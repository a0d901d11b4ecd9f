"""Start the partclipseg segment node and bring it to active.

    ros2 launch partclipseg_ros segment.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info depth:=/camera/aligned_depth_to_color/image_raw

Loads config/segment.yaml (or params_file:=...), remaps the inputs, configures the lifecycle node and activates it
once it is configured. A failed configure (e.g. no weights) leaves the node up and unconfigured, with the reason in
its log. The same start-up without launch: `partclipseg-ros segment` (docs/ros.md).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("partclipseg_ros")
    arguments = {
        "params_file": (os.path.join(share, "config", "segment.yaml"), "parameters YAML"),
        "image": ("image", "colour image topic (rgb8, bgr8, mono8, rgba8, bgra8)"),
        "camera_info": ("camera_info", "camera_info of that image"),
        "depth": ("depth", "depth aligned to the image (16UC1 mm or 32FC1 m)"),
        "node_name": ("partclipseg", "node name"),
        "namespace": ("", "node namespace"),
        "autostart": ("true", "configure and activate the node"),
    }
    config = {name: LaunchConfiguration(name) for name in arguments}
    node = LifecycleNode(
        package="partclipseg_ros",
        executable="segment_node",
        name=config["node_name"],
        namespace=config["namespace"],
        parameters=[config["params_file"]],
        remappings=[(topic, config[topic]) for topic in ("image", "camera_info", "depth")],
        output="screen",
    )
    autostart = IfCondition(config["autostart"])
    configure = EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_CONFIGURE),
        condition=autostart,
    )
    activate_when_configured = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state="configuring",
            goal_state="inactive",
            entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                                  transition_id=Transition.TRANSITION_ACTIVATE))],
        ),
        condition=autostart,
    )
    actions = [DeclareLaunchArgument(name, default_value=default, description=text)
               for name, (default, text) in arguments.items()]
    if "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ:  # 8 MB shared memory for images (docs/ros.md)
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                                              os.path.join(share, "config", "fastdds_shm.xml")))
    return LaunchDescription(actions + [activate_when_configured, node, configure])
