"""``partclipseg bench``: per-frame time against the number of queries, with HF CLIPSeg measured in the same run.

Random weights (speed does not depend on their values), the 352x352 coffee photo, batch 1, this machine's CPU
threads. Our frame = preprocess + image encoder once + all prompts decoded in one call + post-processing. HF
``CLIPSegForImageSegmentation`` gets the same queries as its API requires: one prompt per image, so the image is
repeated and the ViT runs once per prompt (measured with text encoded in the call, and with text embeddings
precomputed, which is the most favourable way to call it).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..defaults import INPUT_SIZE
from ..factory import open_model
from ..model.config import ModelConfig, tiny_config
from ..model.network import tokenize
from ..preprocess import preprocess
from ..data.samples import load_sample
from ..segmenter import Segmenter
from .common import BENCH_QUERIES, median_ms


def hf_clipseg(ours: ModelConfig, seed: int = 0):
    """HF transformers ``CLIPSegForImageSegmentation`` (refined head) with random weights at the sizes of ``ours``."""
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation

    config = CLIPSegConfig(
        text_config=dict(hidden_size=ours.text_width, intermediate_size=ours.text_mlp, num_hidden_layers=ours.text_layers,
                         num_attention_heads=ours.text_heads, hidden_act="quick_gelu", eos_token_id=49407),
        vision_config=dict(hidden_size=ours.vision_width, intermediate_size=ours.vision_mlp,
                           num_hidden_layers=ours.vision_layers, num_attention_heads=ours.vision_heads,
                           patch_size=ours.patch_size, image_size=224, hidden_act="quick_gelu"),
        projection_dim=ours.projection_dim, extract_layers=list(ours.extract_layers), reduce_dim=ours.reduce_dim,
        decoder_num_attention_heads=ours.decoder_heads, decoder_intermediate_size=ours.decoder_mlp,
        use_complex_transposed_convolution=True,
    )
    torch.manual_seed(seed)
    return CLIPSegForImageSegmentation(config).eval()


def measure(size: str, query_counts: list[int], repeats: int, with_hf: bool) -> list[dict]:
    image = np.ascontiguousarray(load_sample("coffee")[:INPUT_SIZE, :INPUT_SIZE])
    model, _ = open_model(None, random_weights=size)
    segmenter = Segmenter(model)
    hf = hf_clipseg(ModelConfig(arch="clipseg") if size == "full" else tiny_config("clipseg")) if with_hf else None
    rows = []
    for count in query_counts:
        queries = BENCH_QUERIES[:count]
        segmenter.clear_text_cache()
        start = time.perf_counter()
        segmenter.set_queries(queries)
        text_ms = (time.perf_counter() - start) * 1e3
        plan = segmenter.plan
        row = {
            "queries": count,
            "decoder_rows": plan.num_prompts,
            "text_ms_on_change": round(text_ms, 1),
            "frame_ms": round(median_ms(lambda: segmenter.segment(image), repeats), 1),
        }
        if hf is not None:
            pixels = preprocess(image).repeat(count, 1, 1, 1)
            tokens = tokenize([q.phrase for q in queries], model.config.context_length)
            mask = (tokens != 0).long()
            with torch.inference_mode():
                embeddings = hf.get_conditional_embeddings(batch_size=count, input_ids=tokens, attention_mask=mask)

                def hf_text() -> object:
                    return hf(pixel_values=pixels, input_ids=tokens, attention_mask=mask)

                def hf_cached() -> object:
                    return hf(pixel_values=pixels, conditional_embeddings=embeddings)

                hf_repeats = max(1, repeats // 2)
                row["hf_frame_ms"] = round(median_ms(hf_text, hf_repeats), 1)
                row["hf_cached_text_frame_ms"] = round(median_ms(hf_cached, hf_repeats), 1)
            row["speedup_vs_hf"] = round(row["hf_frame_ms"] / row["frame_ms"], 2)
            row["speedup_vs_hf_cached_text"] = round(row["hf_cached_text_frame_ms"] / row["frame_ms"], 2)
        rows.append(row)
    base = rows[0]["frame_ms"]
    for row in rows:
        row["frame_vs_first"] = round(row["frame_ms"] / base, 2)
    return rows

