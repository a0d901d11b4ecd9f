"""The training losses on hand-made tensors: values, where gradients flow, and that the L_sep surrogate separates."""
import math

import pytest
import torch
import torch.nn.functional as F

from partclipseg.model.network import DecoderOutput
from partclipseg.prompt_plan import PromptPlan
from partclipseg.queries import PartQuery
from partclipseg.train.losses import (LossConfig, attention_losses, class_pixel_weights, gaussian_kernel,
                                      mask_losses, partclipseg_losses)

# training vocabulary: parts [body, handle], objects [mug, pot]; classes t: 0 mug/body, 1 mug/handle, 2 pot/body
CLASSES = [PartQuery("body", "mug"), PartQuery("handle", "mug"), PartQuery("body", "pot")]
PLAN = PromptPlan.build(CLASSES, part_model=True, all_rows=True)  # K = 2 + 2 + 1 rows, T + 1 = 4 pair rows


def bce(x: float, y: float) -> float:
    p = 1 / (1 + math.exp(-x))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_plan_layout_is_what_the_losses_assume():
    assert PLAN.vocabulary.parts == ("body", "handle") and PLAN.vocabulary.objects == ("mug", "pot")
    assert PLAN.head_rows == (0, 1, 2, 3, 4)
    assert PLAN.pair_parts == (0, 1, 0) and PLAN.pair_objects == (0, 0, 1)


def test_gaussian_kernel_is_the_attend_and_excite_kernel():
    k = gaussian_kernel(3, 0.5)
    line = torch.tensor([math.exp(-1), 1.0, math.exp(-1)])
    line = line / line.sum()  # ~[0.212, 0.576, 0.212]
    assert torch.allclose(k, line[:, None] * line[None, :], atol=1e-6)
    assert abs(float(line[1]) - 0.576) < 1e-3


def test_mask_losses_equal_hand_computed_weighted_bce():
    # one image of 1x3 pixels: pixel 0 = mug/handle (inside mug), pixel 1 = mug without part label, pixel 2 = background
    parts = torch.tensor([[[1, -1, -1]]])
    objects = torch.tensor([[[0, 0, -1]]])
    main = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.5]).repeat(3, 1).T.reshape(1, 5, 1, 3).clone()
    pair = torch.tensor([-0.5, 1.0, 0.25, -2.0]).repeat(3, 1).T.reshape(1, 4, 1, 3).clone()
    object_part, obj, part = mask_losses(DecoderOutput(main, pair), parts, objects, PLAN, background_weight=0.05)
    w = [1, 1, 1, 0.05]
    # pair targets: pixel 0 -> class 1; background pixel 2 -> bg channel; pixel 1 excluded
    on_part = sum(wi * bce(x, y) for wi, x, y in zip(w, [-0.5, 1.0, 0.25, -2.0], [0, 1, 0, 0])) / 4
    on_background = sum(wi * bce(x, y) for wi, x, y in zip(w, [-0.5, 1.0, 0.25, -2.0], [0, 0, 0, 1])) / 4
    assert float(object_part) == pytest.approx(on_part + on_background, rel=1e-5)
    # generalized parts on labelled-part pixels: handle = 1
    assert float(part) == pytest.approx((bce(0.5, 0) + bce(-1.0, 1)) / 2, rel=1e-5)
    # objects + background on every pixel: pixels 0, 1 are mug, pixel 2 background (weight 0.05)
    logits = [2.0, 0.0, 1.5]
    targets = [[1, 0, 0], [1, 0, 0], [0, 0, 1]]
    expected = sum(wi * bce(x, y) for t in targets for wi, x, y in zip([1, 1, 0.05], logits, t)) / 9
    assert float(obj) == pytest.approx(expected, rel=1e-5)


def test_class_pixel_weights_give_every_present_object_the_same_total():
    # 4 mug pixels, 1 pot pixel, 1 background pixel: mug pixels 5 / (2 * 4), the pot pixel 5 / (2 * 1)
    objects = torch.tensor([[[0, 0, 0, 0, 1, -1]]])
    w = class_pixel_weights(objects)
    assert torch.allclose(w, torch.tensor([[[0.625, 0.625, 0.625, 0.625, 2.5, 1.0]]]))
    assert float(w[0, 0, :4].sum()) == pytest.approx(float(w[0, 0, 4]))
    assert float(w[objects >= 0].mean()) == pytest.approx(1.0)
    assert torch.equal(class_pixel_weights(torch.full((1, 2, 2), -1)), torch.ones(1, 2, 2))


def test_balanced_object_term_weighs_pixels_and_leaves_the_other_terms_alone():
    parts = torch.tensor([[[0, 0, 0, 2, -1]]])
    objects = torch.tensor([[[0, 0, 0, 1, -1]]])
    torch.manual_seed(0)
    out = DecoderOutput(torch.randn(1, 5, 1, 5), torch.randn(1, 4, 1, 5))
    out.main[0, 2:, 0, 3] = torch.tensor([3.0, -3.0, 0.0])  # the lone pot pixel is called mug
    plain = mask_losses(out, parts, objects, PLAN, background_weight=0.05)
    balanced = mask_losses(out, parts, objects, PLAN, background_weight=0.05, balance_objects=True)
    assert float(balanced[0]) == float(plain[0]) and float(balanced[2]) == float(plain[2])
    main = out.main[0, 2:, 0].T  # (pixels, O + 1)
    targets = torch.tensor([[1.0, 0, 0]] * 3 + [[0, 1.0, 0], [0, 0, 1.0]])
    pixel = torch.tensor([4 / 6] * 3 + [2.0, 1.0])[:, None] * torch.tensor([1.0, 1.0, 0.05])
    expected = F.binary_cross_entropy_with_logits(main, targets, weight=pixel)
    assert float(balanced[1]) == pytest.approx(float(expected), rel=1e-6)
    assert float(balanced[1]) > 1.2 * float(plain[1])  # the rare object's mistake now counts as much as the mug


def test_balanced_part_terms_weigh_labelled_pixels_by_part_class():
    # three mug/body pixels, one mug/handle pixel, one background pixel: body pixels 4 / (2 * 3), the handle 4 / 2
    parts = torch.tensor([[[0, 0, 0, 1, -1]]])
    objects = torch.tensor([[[0, 0, 0, 0, -1]]])
    torch.manual_seed(1)
    out = DecoderOutput(torch.randn(1, 5, 1, 5), torch.randn(1, 4, 1, 5))
    plain = mask_losses(out, parts, objects, PLAN, background_weight=0.05)
    balanced = mask_losses(out, parts, objects, PLAN, background_weight=0.05, balance_parts=True)
    assert float(balanced[1]) == float(plain[1])  # the object term is not touched
    pixel = torch.tensor([2 / 3] * 3 + [2.0])[:, None]
    pair = out.pair[0, :, 0].T  # (pixels, T + 1)
    pair_targets = torch.tensor([[1.0, 0, 0, 0]] * 3 + [[0, 1.0, 0, 0]])
    on_part = F.binary_cross_entropy_with_logits(pair[:4], pair_targets,
                                                 weight=pixel * torch.tensor([1.0, 1.0, 1.0, 0.05]))
    on_background = F.binary_cross_entropy_with_logits(pair[4], torch.tensor([0, 0, 0, 1.0]),
                                                       weight=torch.tensor([1.0, 1.0, 1.0, 0.05]))
    assert float(balanced[0]) == pytest.approx(float(on_part + on_background), rel=1e-6)
    main = out.main[0, :2, 0].T[:4]  # generalized parts [body, handle] on the labelled pixels
    part_targets = torch.tensor([[1.0, 0]] * 3 + [[0, 1.0]])
    expected = F.binary_cross_entropy_with_logits(main, part_targets, weight=pixel)
    assert float(balanced[2]) == pytest.approx(float(expected), rel=1e-6)
    assert float(balanced[2]) != pytest.approx(float(plain[2]))


def _attention(batch: int, grid: int, part_keys: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
    """(B*K, 4, L, L): uniform attention, except rows listed in ``part_keys`` (row -> key mask over the grid),
    which attend uniformly to those keys only."""
    length = grid * grid + 1
    attention = torch.full((batch * 5, 4, length, length), 1.0 / length)
    for row, keys in (part_keys or {}).items():
        probs = torch.zeros(length)
        probs[1:] = keys.flatten().float() / keys.sum()
        for b in range(batch):
            attention[b * 5 + row] = probs
    return attention


def test_enhancement_of_uniform_attention_is_one_minus_the_weakest_mask_share():
    grid, size = 4, 8
    parts = torch.full((1, size, size), -1)
    parts[0, :, :4] = 0  # mug/body: left half (8 of 16 grid cells)
    parts[0, :2, 4:] = 1  # mug/handle: top right corner (2 grid cells)
    objects = torch.full((1, size, size), -1)
    objects[0, :, :6] = 0
    objects[0, :2, :] = 0  # everything else background
    sep, enh = attention_losses(_attention(1, grid), parts, objects, PLAN, LossConfig())
    length = grid * grid + 1
    # a_j = |M_j| / (r^2 L) everywhere; smoothing keeps a constant; the weakest is the handle (2 cells)
    assert float(enh) == pytest.approx(1 - 2 / (16 * length), rel=1e-5)
    assert float(sep) == 0.0  # constant maps normalise to 0: nothing above the threshold


def _two_part_scene():
    grid, size = 4, 8
    parts = torch.full((1, size, size), -1)
    parts[0, :7, :4] = 0  # mug/body
    parts[0, :7, 4:] = 1  # mug/handle
    objects = torch.full((1, size, size), -1)
    objects[0, :7] = 0  # the bottom pixel row is background (not seen at grid resolution)
    keys_body = torch.zeros(grid, grid, dtype=torch.bool)
    keys_body[:, :2] = True  # 8 cells
    keys_handle = torch.zeros(grid, grid, dtype=torch.bool)
    keys_handle[:, :3] = True  # 12 cells, 8 shared
    # merged map of a class = mean of its part row and object row; part rows 0 (body), 1 (handle); mug row 2
    return _attention(1, grid, {0: keys_body, 1: keys_handle}), parts, objects


def test_separation_counts_overlapping_thresholded_maps():
    attention, parts, objects = _two_part_scene()
    sep, _ = attention_losses(attention, parts, objects, PLAN, LossConfig())
    # normalised maps are the key indicators. Smoothed (reflect padding, weights .212/.576/.212 per axis): body
    # columns [1, .788, .212, 0] -> binary columns 0-1 (8 cells); handle [1, 1, .788, .424] (the pad mirrors
    # column 2) -> all 16 cells. Overlap 8 / union 16.
    assert float(sep) == pytest.approx(8 / 16, rel=1e-6)
    soft, _ = attention_losses(attention, parts, objects, PLAN, LossConfig(separation="soft", temperature=1e-3))
    assert float(soft) == pytest.approx(8 / 16, rel=1e-3)  # equal on (nearly) binary masks of two parts


def test_release_quirk_object_covering_the_whole_image_is_not_counted():
    attention, parts, objects = _two_part_scene()
    objects[:] = 0  # no background: the release drops the largest object id, the only one here
    sep, enh = attention_losses(attention, parts, objects, PLAN, LossConfig())
    assert float(sep) == 0.0 and float(enh) == 0.0


def test_gradients_flow_through_enhancement_and_the_surrogate_but_not_released_separation():
    attention, parts, objects = _two_part_scene()
    logits = attention.clamp_min(1e-6).log().requires_grad_(True)
    probs = torch.softmax(logits, dim=-1)
    sep, enh = attention_losses(probs, parts, objects, PLAN, LossConfig())
    assert not sep.requires_grad  # a thresholded count: no gradient, as released
    (grad,) = torch.autograd.grad(enh, logits, retain_graph=True)
    assert grad.abs().sum() > 0
    soft, _ = attention_losses(probs, parts, objects, PLAN, LossConfig(separation="soft"))
    (grad,) = torch.autograd.grad(soft, logits)
    assert grad.abs().sum() > 0


def test_soft_separation_reduces_overlap_on_a_toy_problem():
    attention, parts, objects = _two_part_scene()
    logits = attention.clamp_min(1e-6).log().clone()
    logits[0:2] = 0.0  # both part rows start attending uniformly -> maximal overlap after noise
    logits += 0.1 * torch.randn(logits.shape, generator=torch.Generator().manual_seed(0))
    logits.requires_grad_(True)
    optimizer = torch.optim.Adam([logits], lr=0.1)
    released = LossConfig()
    start, _ = attention_losses(torch.softmax(logits, -1), parts, objects, PLAN, released)
    for _ in range(60):
        soft, _ = attention_losses(torch.softmax(logits, -1), parts, objects, PLAN, LossConfig(separation="soft"))
        optimizer.zero_grad()
        soft.backward()
        optimizer.step()
    end, _ = attention_losses(torch.softmax(logits, -1), parts, objects, PLAN, released)
    assert float(start) > 0.3
    assert float(end) < 0.5 * float(start)


def test_total_is_the_weighted_sum_with_the_released_weights():
    torch.manual_seed(0)
    attention, parts, objects = _two_part_scene()
    out = DecoderOutput(torch.randn(1, 5, 8, 8), torch.randn(1, 4, 8, 8), [None, None, attention])
    losses = partclipseg_losses(out, parts, objects, PLAN)
    expected = (losses.object_part + losses.object + losses.part + 0.1 * losses.separation
                + 0.01 * losses.enhancement)
    assert float(losses.total) == pytest.approx(float(expected), rel=1e-6)
    with pytest.raises(ValueError, match="need_attentions"):
        partclipseg_losses(DecoderOutput(out.main, out.pair), parts, objects, PLAN)
    plain = partclipseg_losses(DecoderOutput(out.main, out.pair), parts, objects, PLAN,
                               LossConfig(separation_weight=0, enhancement_weight=0))
    assert float(plain.total) == pytest.approx(float(losses.object_part + losses.object + losses.part), rel=1e-6)


def test_masks_are_resized_nearest_like_the_release():
    labels = torch.arange(64).reshape(8, 8) % 3
    from partclipseg.train.losses import _nearest

    masks = _nearest(labels, [0, 1, 2], 4)
    expected = F.interpolate(F.one_hot(labels, 3).permute(2, 0, 1)[None].float(), size=(4, 4), mode="nearest")[0]
    assert torch.equal(masks, expected)
