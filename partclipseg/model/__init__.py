"""The PartCLIPSeg / CLIPSeg network."""
from .config import ModelConfig, tiny_config
from .network import DecoderOutput, PartCLIPSeg, QueryTensors, tokenize

__all__ = ["DecoderOutput", "ModelConfig", "PartCLIPSeg", "QueryTensors", "tiny_config", "tokenize"]
