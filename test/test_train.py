"""The trainer: the released trainable set and optimiser groups, part-branch initialisation, official-layout
checkpoints that resume exactly, and a short real training run that learns parts on held-out synthetic images."""
import numpy as np
import pytest
import torch

from conftest import make_tiny
from partclipseg.checkpoint import CheckpointError, load_checkpoint
from partclipseg.data import open_dataset
from partclipseg.data.synth import SceneConfig, generate
from partclipseg.evaluate import evaluate
from partclipseg.segmenter import Segmenter
from partclipseg.train.losses import LossConfig
from partclipseg.model.network import tokenize
from partclipseg.train.trainer import (TrainConfig, Trainer, export_weights, init_part_branch,
                                       match_background_scale, parameter_groups, part_model_from_clipseg,
                                       trainable_names)

OBJECTS = ["pot", "pan", "knife"]  # 7 classes: a small vocabulary keeps the run short


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory):
    root = tmp_path_factory.mktemp("kitchen")
    generate(root, train=48, val=6, seed=3, objects=OBJECTS, config=SceneConfig(128, 96, min_objects=2, max_objects=3),
             progress=False)
    return root


def test_trainable_set_is_the_released_one(tiny_model):
    names = trainable_names(tiny_model)
    assert all(n.startswith(("visual_adapter.", "clip.token_embedding.", "clip.positional_embedding", "decoder."))
               for n in names)
    expected = {n for n, _ in tiny_model.named_parameters() if n.startswith(("visual_adapter.", "decoder."))}
    assert expected | {"clip.token_embedding.weight", "clip.positional_embedding"} == set(names)
    assert "non_object_embedding" not in names and not any(n.startswith("clip.visual.") for n in names)
    vision = trainable_names(tiny_model, "vision")
    assert "clip.visual.conv1.weight" in vision and "clip.transformer.resblocks.0.attn.in_proj_weight" not in vision
    assert set(names) < set(vision)
    towers = trainable_names(tiny_model, "all")
    assert "clip.visual.conv1.weight" in towers and "clip.transformer.resblocks.0.attn.in_proj_weight" in towers
    assert "clip.visual.positional_embedding" not in towers and "non_object_embedding" not in towers
    fixed_codes = trainable_names(tiny_model, "vision", freeze_text=True)
    assert set(vision) - set(fixed_codes) == {"clip.token_embedding.weight", "clip.positional_embedding"}
    with pytest.raises(ValueError, match="contradicts"):
        trainable_names(tiny_model, "all", freeze_text=True)


def test_no_weight_decay_for_norms_and_embeddings(tiny_model):
    names = trainable_names(tiny_model, "all")
    decay, plain = parameter_groups(tiny_model, names, 1e-4)
    params = dict(tiny_model.named_parameters())
    plain_ids = {id(p) for p in plain["params"]}
    for name in ("decoder.layers.0.layer_norm1.weight", "decoder.layers.2.layer_norm2.bias", "clip.ln_final.weight",
                 "clip.token_embedding.weight", "clip.positional_embedding", "clip.visual.class_embedding"):
        assert id(params[name]) in plain_ids, name
    for name in ("decoder.film_mul.weight", "decoder.film_mul.bias", "visual_adapter.fc.0.weight"):
        assert id(params[name]) not in plain_ids, name
    assert decay["weight_decay"] == 1e-4 and plain["weight_decay"] == 0.0
    assert len(decay["params"]) + len(plain["params"]) == len(names)


def test_part_branch_starts_as_a_copy_of_the_clipseg_head():
    model = make_tiny(seed=2)
    init_part_branch(model)
    d = model.decoder
    for ours, source in ((d.part_obj_with_cond_embed, d.transposed_convolution), (d.cond_film_mul, d.film_mul),
                         (d.cond_film_add, d.film_add)):
        for a, b in zip(ours.state_dict().values(), source.state_dict().values()):
            assert torch.equal(a, b)
    clipseg = make_tiny("clipseg", seed=3)
    converted = part_model_from_clipseg(clipseg)
    assert converted.config.is_part_model
    assert torch.equal(converted.decoder.film_mul.weight, clipseg.decoder.film_mul.weight)
    assert torch.equal(converted.clip.visual.positional_embedding, clipseg.clip.visual.positional_embedding)
    assert torch.equal(converted.decoder.part_obj_with_cond_embed[0].weight, clipseg.decoder.transposed_convolution[0].weight)


def test_from_scratch_background_embedding_matches_the_text_features():
    model = make_tiny(seed=5)
    prompts = ["handle", "pot", "knife"]
    assert model.non_object_embedding.detach().norm() < 2  # the released N(0, 512^-0.5) draw
    match_background_scale(model, prompts)
    with torch.no_grad():
        norms = model.encode_text(tokenize(prompts, model.config.context_length)).norm(dim=-1)
    assert float(model.non_object_embedding.detach().norm()) == pytest.approx(float(norms.mean()), rel=1e-5)


def _config(iterations: int, **kw) -> TrainConfig:
    return TrainConfig(iterations=iterations, batch_size=1, checkpoint_period=2, log_period=1, seed=7, **kw)


def test_checkpoints_resume_exactly_and_load_as_official_weights(tmp_path, kitchen):
    data = open_dataset(kitchen, "train")
    full = Trainer(make_tiny(seed=4), data, _config(3), tmp_path / "full")
    full.run(progress=False)
    interrupted = Trainer(make_tiny(seed=4), data, _config(3), tmp_path / "split")
    interrupted.model.train()
    for _ in range(2):  # a run stopped after its checkpoint at iteration 2
        interrupted.step(interrupted.batch(interrupted.iteration))
        interrupted.iteration += 1
    interrupted.save()
    resumed = Trainer.resume(tmp_path / "split", data)
    assert resumed.iteration == 2 and resumed.config == full.config
    resumed.run(progress=False)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    state = torch.load(tmp_path / "split" / "last.pth", weights_only=True)
    assert {"model", "optimizer", "scheduler", "iteration", "trainer"} <= set(state) and state["iteration"] == 3
    assert all(k.startswith("partclipseg_model.") for k in state["model"])
    loaded = load_checkpoint(tmp_path / "split" / "last.pth")  # the official loader reads training checkpoints
    assert torch.equal(loaded.decoder.film_add.weight, resumed.model.decoder.film_add.weight)
    small = export_weights(resumed.model, tmp_path / "w.pth")
    assert small.stat().st_size < 0.6 * (tmp_path / "split" / "last.pth").stat().st_size
    half = load_checkpoint(small)
    assert half.decoder.film_add.weight.dtype == torch.float32
    assert torch.allclose(half.decoder.film_add.weight, resumed.model.decoder.film_add.weight, atol=1e-3)
    with pytest.raises(CheckpointError, match="no resumable"):
        Trainer.resume(tmp_path / "nothing", data)


def _chance_oracle_miou(dataset) -> float:
    """Expected Oracle-Obj mIoU of guessing one of the object's parts uniformly at random per pixel."""
    classes = dataset.classes
    gt = np.zeros(len(classes.classes))
    pixels_of_object = np.zeros(len(classes.objects))
    for i in range(len(dataset)):
        s = dataset[i]
        labelled = (s.parts >= 0) & (s.objects >= 0)
        gt += np.bincount(s.parts[labelled], minlength=len(gt))
        pixels_of_object += np.bincount(s.objects[labelled], minlength=len(pixels_of_object))
    ious = []
    for c, query in enumerate(classes.classes):
        if gt[c]:
            o = classes.objects.index(query.object)
            k = sum(q.object == query.object for q in classes.classes)
            tp, predicted = gt[c] / k, pixels_of_object[o] / k
            ious.append(tp / (gt[c] + predicted - tp))
    return 100 * float(np.mean(ious))


def test_short_training_lowers_the_loss_and_beats_chance_on_held_out_images(tmp_path, kitchen):
    config = TrainConfig(iterations=60, batch_size=2, lr=3e-3, towers="all", checkpoint_period=1000,
                         log_period=10, seed=1, loss=LossConfig(separation="soft"))
    trainer = Trainer(make_tiny(seed=1), open_dataset(kitchen, "train"), config, tmp_path)
    records = []
    result = trainer.run(progress=False, on_log=records.append)
    assert records[-1]["loss"] < 0.7 * records[0]["loss"], records
    val = open_dataset(kitchen, "val")
    report = evaluate(Segmenter(trainer.model), val, protocols=["oracle"])
    chance = _chance_oracle_miou(val)
    assert report.results["oracle"].miou > chance + 5, (report.results["oracle"].miou, chance)
    assert result.checkpoint.exists()
