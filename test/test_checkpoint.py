import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_tiny
from partclipseg.checkpoint import (CheckpointError, PREFIX, load_checkpoint, model_from_state_dict,
                                    official_state_dict, save_official)
from partclipseg.factory import open_model
from partclipseg.model import ModelConfig, PartCLIPSeg
from partclipseg.queries import PartQuery
from partclipseg.segmenter import Segmenter

KEYS = json.loads((Path(__file__).parent / "data" / "official-checkpoint-keys-small.json").read_text())


def _outputs(model, image, queries="pot/handle; knife handle; mug's handle; handle"):
    seg = Segmenter(model)
    seg.set_queries(queries)
    return seg.segment(image)


def test_official_key_list_is_reproduced(tiny_model):
    """Our export of the small config has exactly the keys, shapes and dtypes of a file written by the official code."""
    ours = {k: (list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in official_state_dict(tiny_model).items()}
    assert ours == {k: (shape, dtype) for k, shape, dtype in KEYS}


@pytest.mark.parametrize("mlp_layers", [1, 2])
def test_round_trip(tmp_path, rgb_image, mlp_layers):
    model = make_tiny(seed=1, part_obj_mlp_layers=mlp_layers)
    path = save_official(model, tmp_path / "ck.pth", iteration=1234, optimizer={"state": {}, "param_groups": []},
                         scheduler={"last_epoch": 1234})
    raw = torch.load(path, weights_only=True)
    assert raw["iteration"] == 1234 and all(k.startswith(PREFIX) for k in raw["model"])
    assert (PREFIX + "decoder.part_obj_mlp.2.weight" in raw["model"]) == (mlp_layers == 2)
    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    a, b = _outputs(model, rgb_image), _outputs(loaded, rgb_image)
    assert np.array_equal(a.labels, b.labels)
    assert torch.equal(a.logits, b.logits)


def test_trained_classes_travel_with_the_weights(tmp_path, tiny_model):
    assert load_checkpoint(save_official(tiny_model, tmp_path / "official.pth")).trained_classes == ()
    path = save_official(tiny_model, tmp_path / "ours.pth", classes=["pot/handle", "knife/blade"])
    assert load_checkpoint(path).trained_classes == (PartQuery("handle", "pot"), PartQuery("blade", "knife"))
    bad = save_official(tiny_model, tmp_path / "bad.pth", classes=["handle"])
    with pytest.raises(CheckpointError, match="part without its object"):
        load_checkpoint(bad)


def test_module_prefix_and_plain_state_dict(tmp_path, tiny_model, rgb_image):
    sd = {"module." + k: v for k, v in official_state_dict(tiny_model).items()}
    torch.save(sd, tmp_path / "plain.pth")
    loaded = load_checkpoint(tmp_path / "plain.pth")
    assert torch.equal(_outputs(loaded, rgb_image).logits, _outputs(tiny_model, rgb_image).logits)


def test_sizes_are_inferred(tiny_model):
    sd = {k.removeprefix(PREFIX): v for k, v in official_state_dict(tiny_model).items()}
    model = model_from_state_dict(sd, "partclipseg")
    cfg = model.config
    assert (cfg.vision_width, cfg.vision_layers, cfg.text_width, cfg.text_layers) == (64, 10, 64, 2)
    assert (cfg.vision_heads, cfg.text_heads, cfg.decoder_mlp, cfg.adapter_hidden) == (1, 1, 128, 16)
    assert (cfg.source_grid, cfg.projection_dim, cfg.vocab_size) == (14, 512, 49408)


def _save(tmp_path, sd, name="bad.pth"):
    path = tmp_path / name
    torch.save({"model": sd, "iteration": 3}, path)
    return path


def test_every_problem_in_one_report(tmp_path, tiny_model):
    sd = official_state_dict(tiny_model)
    del sd[PREFIX + "decoder.film_add.bias"]
    del sd[PREFIX + "clip.vision_model.encoder.layers.4.self_attn.k_proj.weight"]
    sd[PREFIX + "decoder.reduces.1.weight"] = torch.zeros(64, 65)
    sd[PREFIX + "decoder.something_new.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(_save(tmp_path, sd))
    text = str(err.value)
    assert "2 missing" in text and "decoder.film_add.bias" in text and "layers.4.self_attn.k_proj.weight" in text
    assert "1 misshaped" in text and "decoder.reduces.1.weight: (64, 65), expected (64, 64)" in text
    assert "1 unexpected" in text and "decoder.something_new.weight" in text
    assert "Nothing was loaded" in text


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.pth").write_text("hello, not weights\n")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_checkpoint(tmp_path / "notes.pth")
    torch.save({"iteration": 5, "model": {}}, tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pth")


def test_truncated(tmp_path, tiny_model):
    path = save_official(tiny_model, tmp_path / "ck.pth")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="the file is truncated: a PyTorch checkpoint is a zip archive"):
        load_checkpoint(path)


def _png() -> bytes:
    import cv2

    return cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()


@pytest.mark.parametrize("content, cause", [
    (lambda ck: b"", "the file is empty (0 bytes)"),
    (lambda ck: ck[:100], "the file is truncated"),
    (lambda ck: ck[: len(ck) - 200], "the file is truncated"),
    (lambda ck: _png(), "not a PyTorch checkpoint: it looks like a PNG image"),
    (lambda ck: b"\xff\xd8\xff\xe0" + bytes(100), "not a PyTorch checkpoint: it looks like a JPEG image"),
    (lambda ck: b"<!DOCTYPE html><html><title>Google Drive - Virus scan warning", "a web page"),
    (lambda ck: b"iteration: 5\nmodel: weights\n", "not a PyTorch checkpoint: it looks like a text file"),
    (lambda ck: bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)), "unrecognised binary data"),
    (lambda ck: b"\x80\x02" + bytes(np.random.default_rng(2).integers(0, 256, 500, dtype=np.uint8)), "truncated or corrupt"),
])
def test_wrong_files_name_their_cause_before_any_trust_advice(tmp_path, tiny_model, content, cause):
    """0-byte, truncated, image, text, web page and random files say what they are; the --trust-checkpoint advice
    is only given for complete pickles that hold Python objects."""
    checkpoint = save_official(tiny_model, tmp_path / "ck.pth").read_bytes()
    path = tmp_path / "weights.pth"
    path.write_bytes(content(checkpoint))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert cause in str(err.value) and "trust" not in str(err.value)
    assert str(err.value).startswith(f"{path}: ")  # our sentence first; any internal text only after it


def test_vocabulary_mark_is_written_and_read(tmp_path, tiny_model):
    """Official files (no mark, no classes) are open; this package's files say so; a file listing its classes
    without a mark (trained here before the mark existed) is read as closed."""
    official = load_checkpoint(save_official(tiny_model, tmp_path / "official.pth"))
    assert official.vocabulary == "open" and official.trained_classes == ()
    model = make_tiny()
    model.trained_classes = (PartQuery("handle", "pot"), PartQuery("lid", "pot"))
    unmarked = tmp_path / "unmarked.pth"
    save_official(model, unmarked)
    assert "vocabulary" not in torch.load(unmarked, weights_only=True)
    assert load_checkpoint(unmarked).vocabulary == "closed"
    for mark in ("open", "closed"):
        model.vocabulary = mark
        path = save_official(model, tmp_path / f"{mark}.pth")
        assert torch.load(path, weights_only=True)["vocabulary"] == mark
        assert load_checkpoint(path).vocabulary == mark
    for raw, message in (({"vocabulary": "half"}, "must be one of open, closed"),
                         ({"vocabulary": "closed", "classes": None}, "lists no 'classes'")):
        state = torch.load(tmp_path / "closed.pth", weights_only=True)
        state.update(raw)
        if state["classes"] is None:
            del state["classes"]
        torch.save(state, tmp_path / "bad.pth")
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(tmp_path / "bad.pth")


def test_plain_clip_is_refused(tmp_path, tiny_model):
    sd = official_state_dict(tiny_model)
    hf_clip = {k.removeprefix(PREFIX + "clip."): v for k, v in sd.items() if k.startswith(PREFIX + "clip.")}
    with pytest.raises(CheckpointError, match="plain CLIP"):
        load_checkpoint(_save(tmp_path, hf_clip))
    open_clip_sd = {k.removeprefix("clip."): v for k, v in tiny_model.state_dict().items() if k.startswith("clip.")}
    torch.save(open_clip_sd, tmp_path / "openclip.pt")
    with pytest.raises(CheckpointError, match="plain CLIP"):
        load_checkpoint(tmp_path / "openclip.pt")


def test_simple_head_clipseg_is_named(tmp_path, tiny_clipseg):
    sd = {k: v for k, v in official_state_dict(tiny_clipseg).items() if "transposed_convolution" not in k}
    sd["decoder.transposed_convolution.weight"] = torch.zeros(64, 1, 16, 16)
    with pytest.raises(CheckpointError, match="non-refined"):
        load_checkpoint(_save(tmp_path, sd))


def test_clipseg_where_partclipseg_expected(tmp_path, tiny_clipseg):
    path = save_official(tiny_clipseg, tmp_path / "clipseg.pth")
    assert load_checkpoint(path).config.arch == "clipseg"
    with pytest.raises(CheckpointError, match="plain CLIPSeg checkpoint"):
        load_checkpoint(path, expect="partclipseg")


def test_python_objects_need_trust(tmp_path, tiny_model):
    path = tmp_path / "pickled.pth"
    torch.save({"model": official_state_dict(tiny_model), "cfg": ModelConfig()}, path)
    with pytest.raises(CheckpointError, match="trust"):
        load_checkpoint(path)
    assert load_checkpoint(path, trust=True).config.vision_width == 64


def test_open_model_refuses_without_weights():
    with pytest.raises(CheckpointError, match="never downloaded") as err:
        open_model(None)
    assert "drive.google.com" in str(err.value) and "--random-weights" in str(err.value)
    model, text = open_model(None, random_weights="tiny")
    assert isinstance(model, PartCLIPSeg) and "RANDOM" in text


@pytest.mark.slow
def test_full_size_round_trip(rgb_image):
    torch.manual_seed(0)
    model = PartCLIPSeg(ModelConfig()).eval()
    sd = {k.removeprefix(PREFIX): v for k, v in official_state_dict(model).items()}
    assert sd["clip.vision_model.embeddings.position_embedding.weight"].shape == (197, 768)
    loaded = model_from_state_dict(sd, "partclipseg")
    assert loaded.config == model.config
    assert torch.equal(_outputs(loaded, rgb_image, "pot/handle").logits, _outputs(model, rgb_image, "pot/handle").logits)
