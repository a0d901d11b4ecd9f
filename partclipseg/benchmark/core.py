"""``partclipseg bench``: the frame time of each backend variant against the number of queries at the node's input
resolution, the cost of a query change, and HF CLIPSeg measured in the same run (README, "Benchmarks").

Random weights (speed does not depend on their values), the coffee photo at ``resolution``, batch 1, this machine's
CPU threads. A frame = preprocess + image encoder once + all prompts decoded in one call + post-processing at the
source resolution (the node's work per frame). A query change = the text tower for the new prompts and the query
tensors (``text_ms_on_change``); ``first_answer_ms`` = the change and the first frame answered with it. HF
``CLIPSegForImageSegmentation`` gets the same queries as its API requires: one prompt per image, so the image is
repeated and the ViT runs once per prompt (with text encoded in the call, and with text embeddings precomputed,
the most favourable way to call it); its time excludes preprocessing, ours includes it.

Post-processing depends on the logits: random weights change their labels at almost every pixel (the worst case,
:mod:`partclipseg.postprocess` upsamples every map), a trained model's are regions with a thin boundary band.
:func:`postprocess_rows` times it on the bundled (trained) model's logits of the same frame as well.
"""
from __future__ import annotations

import statistics

import numpy as np
import torch

from ..backends import BackendOptions, BackendUnavailable
from ..checkpoint import load_checkpoint
from ..defaults import BUNDLED_CHECKPOINT
from ..factory import open_model
from ..model.config import ModelConfig, tiny_config
from ..model.network import tokenize
from ..preprocess import preprocess
from ..prompt_plan import PromptPlan
from ..segmenter import Segmenter
from .backends import Variant, timing
from .common import BENCH_QUERIES, frame, median_ms

DEFAULT_VARIANTS = ("torch/fp32", "onnxruntime/fp32", "onnxruntime/int8", "torch/bf16", "auto")


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


def hf_rows(size: str, image: np.ndarray, counts: list[int], repeats: int) -> dict[int, dict]:
    """HF CLIPSeg's frame time per query count (text in the call, and text precomputed)."""
    hf = hf_clipseg(ModelConfig(arch="clipseg") if size == "full" else tiny_config("clipseg"))
    context = ModelConfig().context_length
    rows = {}
    for count in counts:
        queries = BENCH_QUERIES[:count]
        pixels = preprocess(image).repeat(count, 1, 1, 1)
        tokens = tokenize([q.phrase for q in queries], context)
        mask = (tokens != 0).long()
        with torch.inference_mode():
            embeddings = hf.get_conditional_embeddings(batch_size=count, input_ids=tokens, attention_mask=mask)
            hf_repeats = max(1, repeats // 2)
            rows[count] = {
                "hf_frame_ms": round(median_ms(lambda: hf(pixel_values=pixels, input_ids=tokens,
                                                          attention_mask=mask), hf_repeats), 1),
                "hf_cached_text_frame_ms": round(median_ms(lambda: hf(pixel_values=pixels,
                                                                      conditional_embeddings=embeddings),
                                                           hf_repeats), 1),
            }
    return rows


def measure(size: str, counts: list[int], repeats: int, variants: list[Variant], resolution: tuple[int, int],
            options: BackendOptions = BackendOptions(), with_hf: bool = True) -> tuple[list[dict], list[str]]:
    """(one row per variant and query count, a line per variant that could not run). ``resolution`` = (width,
    height)."""
    image = frame(resolution[::-1])
    model, _ = open_model(None, random_weights=size)
    hf = hf_rows(size, image, counts, repeats) if with_hf else {}
    rows, skipped = [], []
    for variant in variants:
        try:
            segmenter = variant.segmenter(model, options)
        except BackendUnavailable as err:
            skipped.append(f"skipped {variant}: {err}")
            continue
        runs = segmenter.backend.describe().split(" (")[0]
        first = None
        for measured in timing(segmenter, image, counts, repeats):
            count = measured["queries"]
            plan = PromptPlan.build(BENCH_QUERIES[:count], model.config.is_part_model)
            row = {"variant": str(variant), "runs": runs, "queries": count, "decoder_rows": plan.num_prompts,
                   "frame_ms": measured["end_to_end_ms"]}
            row.update({f"{stage}_ms": measured[f"{stage}_ms"] for stage in ("preprocess", "encode", "decode",
                                                                            "postprocess")})
            row["text_ms_on_change"] = measured["text_ms"]
            row["first_answer_ms"] = measured["first_answer_ms"]
            first = first or row["frame_ms"]
            row["frame_vs_first"] = round(row["frame_ms"] / first, 2)
            if count in hf:
                row.update(hf[count])
                row["speedup_vs_hf"] = round(row["hf_frame_ms"] / row["frame_ms"], 1)
                row["speedup_vs_hf_cached_text"] = round(row["hf_cached_text_frame_ms"] / row["frame_ms"], 1)
            rows.append(row)
        del segmenter
    return rows, skipped


def postprocess_rows(resolution: tuple[int, int], counts: list[int], repeats: int) -> list[dict]:
    """Post-processing alone on the bundled (trained) model's logits of the benchmark frame: the realistic cost
    (random weights are the worst case, in :func:`measure`'s rows)."""
    image = frame(resolution[::-1])
    segmenter = Segmenter(load_checkpoint(BUNDLED_CHECKPOINT))
    rows = []
    for count in counts:
        segmenter.set_queries(BENCH_QUERIES[:count])
        times = [segmenter.segment(image).timings["postprocess"] for _ in range(repeats + 1)][1:]
        rows.append({"queries": count, "trained_postprocess_ms": round(statistics.median(times), 2)})
    return rows
