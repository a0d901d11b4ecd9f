"""PartCLIPSeg core library (ROS-free)."""
