"""The CLIPSeg path against HF transformers CLIPSegForImageSegmentation on shared random weights."""
import pytest
import torch
from safetensors.torch import save_file

from partclipseg.benchmark.core import hf_clipseg
from partclipseg.checkpoint import load_checkpoint
from partclipseg.model import tiny_config, tokenize
from partclipseg.prompt_plan import PromptPlan
from partclipseg.preprocess import preprocess
from partclipseg.queries import parse_queries
from partclipseg.segmenter import Segmenter


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    hf = hf_clipseg(tiny_config("clipseg"), seed=3)
    # HF's init draws the decoder's FiLM and conv weights with std 1 (logits in the thousands); draw them at
    # He scale instead so logits have a trained model's range, and give every bias a non-zero value.
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if not name.startswith("decoder"):
                continue
            if name.endswith("bias"):
                p.normal_(0, 0.1)
            elif "film" in name:
                p.normal_(0, p.shape[1] ** -0.5)
            elif "transposed_convolution.0" in name:
                p.normal_(0, (2 / (p.shape[1] * 9)) ** 0.5)
            elif "transposed_convolution" in name:  # ConvTranspose2d [in, out, k, k], stride k: fan-in = in
                p.normal_(0, (2 / p.shape[0]) ** 0.5)
    path = tmp_path_factory.mktemp("hf") / "model.safetensors"
    save_file({k: v.contiguous() for k, v in hf.state_dict().items()}, str(path))
    return hf, load_checkpoint(path, expect="clipseg")


def test_logits_match_hf(pair, rgb_image):
    hf, ours = pair
    queries = parse_queries("pot handle; knife blade; handle")
    plan = PromptPlan.build(queries, part_model=False)
    tokens = tokenize(list(plan.prompts), 77)
    pixels = preprocess(rgb_image)
    with torch.inference_mode():
        expected = hf(pixel_values=pixels.repeat(len(tokens), 1, 1, 1), input_ids=tokens,
                      attention_mask=(tokens != 0).long()).logits
        text = ours.encode_text(tokens)
        torch.testing.assert_close(text, hf.get_conditional_embeddings(batch_size=len(tokens), input_ids=tokens, attention_mask=(tokens != 0).long()),
                                   atol=1e-5, rtol=0)
        got = ours.decode(ours.encode_image(pixels), ours.condition(text, plan)).main[0]
    assert got.shape == expected.shape == (3, 352, 352)
    assert 1.0 < expected.abs().max().item() < 100.0  # a trained model's logit range
    assert (got - expected).abs().max().item() <= 1e-4


def test_segmenter_runs_clipseg_baseline(pair, rgb_image):
    hf, ours = pair
    seg = Segmenter(ours)
    seg.set_queries("pot's handle; knife blade")
    result = seg.segment(rgb_image)
    tokens = tokenize(["pot handle", "knife blade"], 77)
    with torch.inference_mode():
        logits = hf(pixel_values=preprocess(rgb_image).repeat(2, 1, 1, 1), input_ids=tokens,
                    attention_mask=(tokens != 0).long()).logits
    up = torch.nn.functional.interpolate(logits[None], size=rgb_image.shape[:2], mode="bilinear", align_corners=False)[0]
    best, arg = torch.cat([up, torch.zeros_like(up[:1])]).max(0)
    expected = torch.where(arg == 2, 0, arg + 1)
    agree = (torch.from_numpy(result.labels).long() == expected).float().mean().item()
    assert agree > 0.999
