import numpy as np
import pytest
import torch

from partclipseg.model.network import DecoderOutput
from partclipseg.prompt_plan import PromptPlan
import partclipseg.postprocess as postprocess_module
from partclipseg.postprocess import postprocess
from partclipseg.queries import parse_queries

NEG, POS = -5.0, 5.0


def _plan(text, part_model=True):
    return PromptPlan.build(parse_queries(text), part_model=part_model)


def test_pred_all_rules_on_hand_made_logits():
    # queries: pot/handle (pair 0), pot/lid (pair 1), knife/blade (pair 2), handle (bare, main 0)
    plan = _plan("pot/handle; pot/lid; knife/blade; handle")
    assert plan.vocabulary.objects == ("knife", "pot")
    # 1 x 4 pixels. main rows: [handle(bare), knife, pot, background]; pair rows: [pot/handle, pot/lid, knife/blade, bg]
    main = torch.tensor([
        [NEG, NEG, NEG, 1.0],   # bare handle: only strong at pixel 3
        [NEG, POS, NEG, NEG],   # knife wins pixel 1
        [POS, NEG, NEG, NEG],   # pot wins pixel 0
        [NEG, NEG, POS, POS],   # background wins pixels 2, 3
    ])[None, :, None, :]
    pair = torch.tensor([
        [1.0, 3.0, 4.0, NEG],   # pot/handle: wins pixel 0 inside pot; strong at 1/2 but gated out
        [0.5, NEG, NEG, NEG],   # pot/lid
        [NEG, 2.0, NEG, NEG],   # knife/blade: the only knife part at pixel 1
        [NEG, NEG, 3.0, 0.0],   # background part channel
    ])[None, :, None, :]
    result = postprocess(plan, DecoderOutput(main, pair), (1, 4))
    # pixel 0: pot -> max(pot/handle 1.0, pot/lid 0.5, bare handle -5) = pot/handle (1)
    # pixel 1: knife -> knife/blade 2.0 beats bare handle -5 -> 3
    # pixel 2: background 3.0 beats bare handle -> 0 ; pixel 3: bare handle 1.0 beats background 0.0 -> 4
    assert result.labels.tolist() == [[1, 3, 0, 4]]
    assert [p.pixel_count for p in result.parts] == [1, 0, 1, 1]
    assert result.parts[0].score == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item(), rel=1e-6)
    assert result.parts[3].roi == (3, 0, 1, 1)
    assert result.parts[1].roi == (0, 0, 0, 0)
    np.testing.assert_allclose(result.probability(2), torch.sigmoid(pair[0, 2]).numpy(), rtol=1e-6)


def test_oracle_rules_on_hand_made_logits():
    plan = _plan("pot/handle; pot/lid; knife/blade")
    main = torch.full((1, 3, 1, 3), POS)  # objects/background are ignored by oracle
    pair = torch.tensor([[NEG, 1.0, NEG], [0.0, NEG, NEG], [POS, POS, NEG], [POS, POS, POS]])[None, :, None, :]
    result = postprocess(plan, DecoderOutput(main, pair), (1, 3), mode="oracle", objects=["Pot"])
    # knife absent -> knife/blade removed; no background channel -> argmax among pot parts everywhere
    assert result.labels.tolist() == [[2, 1, 1]]
    none = postprocess(plan, DecoderOutput(main, pair), (1, 3), mode="oracle", objects=["cup"])
    assert none.labels.tolist() == [[0, 0, 0]]
    with pytest.raises(ValueError, match="objects"):
        postprocess(plan, DecoderOutput(main, pair), (1, 3), mode="oracle")


def test_clipseg_background_is_a_constant_half():
    plan = _plan("pot handle; knife blade", part_model=False)
    main = torch.tensor([[-1.0, 2.0, 0.5], [-2.0, 1.0, 3.0]])[None, :, None, :]
    result = postprocess(plan, DecoderOutput(main, None), (1, 3))
    assert result.labels.tolist() == [[0, 1, 2]]


def test_threshold_and_min_pixels():
    plan = _plan("pot/handle; pot/lid")
    main = torch.tensor([[POS] * 4, [NEG] * 4])[None, :, None, :]  # pot everywhere
    pair = torch.tensor([[0.1, 0.2, 3.0, NEG], [NEG, NEG, NEG, 2.0], [NEG] * 4])[None, :, None, :]
    out = DecoderOutput(main, pair)
    assert postprocess(plan, out, (1, 4)).labels.tolist() == [[1, 1, 1, 2]]
    # sigmoid(0.1), sigmoid(0.2) < 0.6
    assert postprocess(plan, out, (1, 4), score_threshold=0.6).labels.tolist() == [[0, 0, 1, 2]]
    dropped = postprocess(plan, out, (1, 4), min_pixels=2)
    assert dropped.labels.tolist() == [[1, 1, 1, 0]]
    assert [p.pixel_count for p in dropped.parts] == [3, 0]


def _official_pred_all(main, pair, plan):
    """Literal port of baselines/partclipseg.py (sigmoid, one-hot object gating, argmax over T+1)."""
    s = torch.sigmoid(pair[0])
    obj = torch.sigmoid(main[0][[c.index for c in plan.object_channels]]).argmax(0)
    onehot = torch.nn.functional.one_hot(obj, len(plan.object_channels)).permute(2, 0, 1).float()
    gated = torch.stack([s[t] * onehot[o] for t, o in enumerate(plan.pair_objects)] + [s[-1] * onehot[-1]])
    arg = gated.argmax(0)
    return torch.where(arg == len(plan.pair_objects), 0, arg + 1)


def _official_oracle(pair, plan, present):
    s = torch.sigmoid(pair[0, :-1]).clone()
    for t, q in enumerate(plan.queries):
        if q.object not in present:
            s[t] = 0
    return s.argmax(0) + 1


def test_matches_official_rules_on_random_logits():
    plan = _plan("pot/handle; pot/lid; knife/blade; knife/handle; mug/handle")
    gen = torch.Generator().manual_seed(0)
    main = torch.randn(1, len(plan.head_rows), 24, 24, generator=gen) * 3
    pair = torch.randn(1, len(plan.queries) + 1, 24, 24, generator=gen) * 3
    size = (37, 53)
    up = lambda t: torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)  # noqa: E731
    result = postprocess(plan, DecoderOutput(main, pair), size)
    assert result.labels.tolist() == _official_pred_all(up(main), up(pair), plan).tolist()
    oracle = postprocess(plan, DecoderOutput(main, pair), size, mode="oracle", objects=["pot", "mug"])
    assert oracle.labels.tolist() == _official_oracle(up(pair), plan, {"pot", "mug"}).tolist()


def _reference(plan, out, size, mode="pred-all", objects=None):
    """The rule on every map upsampled to ``size`` (what postprocess computes without upsampling them all)."""
    up = lambda t: torch.nn.functional.interpolate(t.float(), size=size, mode="bilinear", align_corners=False)[0]  # noqa: E731
    main, pair = up(out.main), None if out.pair is None else up(out.pair)
    pick = lambda c: (main if c.source == "main" else pair)[c.index]  # noqa: E731
    logits = torch.stack([pick(c) for c in plan.query_channels])
    n = len(plan.queries)
    if mode == "pred-all" and plan.background_channel is not None:
        winner = torch.stack([pick(c) for c in plan.object_channels]).max(0).indices
        gated = [q if o is None else q.masked_fill(winner != o, -torch.inf) for q, o in zip(logits, plan.query_objects)]
        background = pick(plan.background_channel).masked_fill(winner != len(plan.object_channels) - 1, -torch.inf)
        scores = torch.stack(gated + [background])
    elif mode == "pred-all":
        scores = torch.cat([logits, torch.zeros_like(logits[:1])])
    else:
        allowed = [q.object is None or q.object in objects for q in plan.queries]
        scores = torch.stack([q if ok else torch.full_like(q, -torch.inf) for q, ok in zip(logits, allowed)]
                             + [torch.full_like(logits[0], -torch.inf)])
    best, index = scores.max(0)
    labels = torch.where((index == n) | torch.isneginf(best), 0, index + 1)
    return labels.numpy().astype(np.uint8), torch.sigmoid(best)


def _check_against_reference(plan, out, size, **kwargs):
    result = postprocess(plan, out, size, **kwargs)
    labels, probability = _reference(plan, out, size, **kwargs)
    np.testing.assert_array_equal(result.labels, labels)
    for i, part in enumerate(result.parts):
        mask = labels == i + 1
        assert part.pixel_count == mask.sum()
        assert part.score == pytest.approx(float(probability[torch.from_numpy(mask)].double().mean()) if mask.any()
                                           else 0.0, rel=1e-9, abs=1e-12)
        if mask.any():
            ys, xs = np.nonzero(mask)
            assert part.roi == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    return result


@pytest.fixture(scope="module")
def kitchen_outputs():
    """The bundled (trained) model's decoder output on the kitchen sample, for 3 and for 16 queries."""
    from partclipseg.benchmark.common import BENCH_QUERIES
    from partclipseg.checkpoint import load_checkpoint
    from partclipseg.data.samples import load_sample
    from partclipseg.defaults import BUNDLED_CHECKPOINT
    from partclipseg.segmenter import Segmenter

    segmenter = Segmenter(load_checkpoint(BUNDLED_CHECKPOINT))
    features = segmenter.encode_image(load_sample("kitchen")).features
    outputs = []
    for queries in ("pot/lid; pot/handle; spatula/handle; handle", BENCH_QUERIES[:15] + ["handle"]):
        segmenter.set_queries(queries)
        outputs.append((segmenter.plan, segmenter.backend.decode(features, segmenter._state.tensors)))
    return outputs


@pytest.mark.parametrize("size", [(480, 640), (120, 160), (401, 353)])
def test_band_refinement_equals_upsampling_every_map(kitchen_outputs, size, monkeypatch):
    """A trained model's maps: labels decided at the decoder's resolution and refined in the boundary band are
    exactly those of the rule on every map upsampled (up- and downsampling), in both modes, with a threshold."""
    calls = []
    original = postprocess_module._upsample
    monkeypatch.setattr(postprocess_module, "_upsample", lambda maps, s: calls.append(len(maps)) or original(maps, s))
    for plan, out in kitchen_outputs:
        _check_against_reference(plan, out, size)
        _check_against_reference(plan, out, size, mode="oracle", objects=["pot", "mug"])
        assert postprocess(plan, out, size, score_threshold=0.6).labels.tolist() == \
            np.where(_reference(plan, out, size)[1].numpy() < 0.6, 0, _reference(plan, out, size)[0]).tolist()
    assert calls and set(calls) == {1}  # only the winning logit was upsampled: never every map


def test_noisy_maps_fall_back_to_upsampling_and_agree(monkeypatch):
    """Random logits change at every pixel (nearly all of the image is band): every map is upsampled instead,
    with the same result."""
    calls = []
    original = postprocess_module._upsample
    monkeypatch.setattr(postprocess_module, "_upsample", lambda maps, s: calls.append(len(maps)) or original(maps, s))
    plan = _plan("pot/handle; pot/lid; knife/blade; knife/handle; mug/handle; handle")
    gen = torch.Generator().manual_seed(1)
    out = DecoderOutput(torch.randn(1, len(plan.head_rows), 40, 40, generator=gen),
                        torch.randn(1, len(plan.pair_parts) + 1, 40, 40, generator=gen))
    _check_against_reference(plan, out, (61, 83))
    assert calls == [len(plan.head_rows), len(plan.pair_parts) + 1]  # main and pair upsampled whole


def test_logits_are_upsampled_on_request():
    plan = _plan("pot/handle; knife/blade")
    gen = torch.Generator().manual_seed(2)
    out = DecoderOutput(torch.randn(1, 3, 8, 8, generator=gen), torch.randn(1, 3, 8, 8, generator=gen))
    result = postprocess(plan, out, (12, 20))
    assert result._logits is None
    expected = torch.nn.functional.interpolate(out.pair[:, :2], size=(12, 20), mode="bilinear", align_corners=False)[0]
    assert torch.equal(result.logits, expected)
