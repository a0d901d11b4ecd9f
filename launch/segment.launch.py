"""Start the partclipseg segment node and bring it to active.

    ros2 launch partclipseg_ros segment.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info depth:=/camera/aligned_depth_to_color/image_raw \
        checkpoint:=/path/to/partclipseg_voc_oracle.pth queries:="pot/handle"

Every argument (`ros2 launch partclipseg_ros segment.launch.py --show-args`) is in
partclipseg_ros/launch_arguments.py, which `partclipseg-ros segment` reads too: parameters (empty = the value in
params_file, default config/segment.yaml), input remaps, namespace, node_name, autostart. A failed configure (e.g. no
weights) leaves the node up and unconfigured, with the reason in its log (docs/ros.md, "Start-up").
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler, SetEnvironmentVariable
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from partclipseg_ros.launch_arguments import ARGUMENTS, autostart, node_setting, parameter_overrides, remappings


def _node(context):
    """The node with the arguments as given on the command line (empty parameter arguments left out)."""
    values = {argument.name: context.perform_substitution(LaunchConfiguration(argument.name)) for argument in ARGUMENTS}
    share = get_package_share_directory("partclipseg_ros")
    node = LifecycleNode(
        package="partclipseg_ros",
        executable="segment_node",
        name=node_setting(values, "node_name"),
        namespace=node_setting(values, "namespace"),
        parameters=[node_setting(values, "params_file") or os.path.join(share, "config", "segment.yaml"),
                    parameter_overrides(values)],
        remappings=remappings(values),
        output="screen",
    )
    if not autostart(values):
        return [node]

    def transition(transition_id):
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id))

    activate_when_configured = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, start_state="configuring", goal_state="inactive",
        entities=[transition(Transition.TRANSITION_ACTIVATE)]))
    return [activate_when_configured, node, transition(Transition.TRANSITION_CONFIGURE)]


def generate_launch_description() -> LaunchDescription:
    actions = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description) for a in ARGUMENTS]
    if "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ:  # 8 MB shared memory for images (docs/ros.md)
        share = get_package_share_directory("partclipseg_ros")
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                                              os.path.join(share, "config", "fastdds_shm.xml")))
    return LaunchDescription(actions + [OpaqueFunction(function=_node)])
