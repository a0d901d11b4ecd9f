import numpy as np
import pytest
import torch

from conftest import make_tiny
from partclipseg.preprocess import ImageError, as_rgb, preprocess
from partclipseg.queries import PartQuery, QueryError, parse_queries
from partclipseg.segmenter import Segmenter

SIXTEEN = [f"object{i}/part{i % 5}" for i in range(16)]


class Counter:
    """Counts real calls of the image encoder (forward hook) and the prompts the text tower encodes."""

    def __init__(self, model):
        self.images = 0
        self.prompts: list[int] = []
        model.clip.visual.conv1.register_forward_hook(lambda *a: self._image())  # patch embedding: once per encoding
        original = model.encode_text

        def encode_text(tokens):
            self.prompts.append(tokens.shape[0])
            return original(tokens)

        model.encode_text = encode_text

    def _image(self):
        self.images += 1


def test_image_encoded_once_per_frame_for_1_and_16_queries(rgb_image):
    model = make_tiny()
    counter = Counter(model)
    seg = Segmenter(model)
    for queries in (["pot/handle"], SIXTEEN):
        seg.set_queries(queries)
        before = counter.images
        result = seg.segment(rgb_image)
        assert counter.images - before == 1
        assert len(result.parts) == len(queries)


def test_text_encoded_only_for_new_words(rgb_image):
    model = make_tiny()
    counter = Counter(model)
    seg = Segmenter(model)
    seg.set_queries("pot/handle; knife/blade")  # parts blade, handle + objects knife, pot
    assert counter.prompts == [4]
    seg.segment(rgb_image)
    seg.segment(rgb_image)
    assert counter.prompts == [4]  # frames never touch the text tower
    seg.set_queries("pot/lid; knife/handle")  # only "lid" is new
    assert counter.prompts == [4, 1]
    seg.set_queries("knife/blade")  # nothing new
    assert counter.prompts == [4, 1]


def test_one_batched_call_equals_one_row_at_a_time(tiny_model, rgb_image):
    """Decoding all rows in one call gives each row exactly what decoding it alone gives."""
    from partclipseg.model import QueryTensors

    seg = Segmenter(tiny_model)
    seg.set_queries("pot/handle; knife/blade; handle; mug/rim")
    tensors = seg._state.tensors
    with torch.inference_mode():
        features = tiny_model.encode_image(preprocess(rgb_image))
        together = tiny_model.decode(features, tensors)
        for m in range(len(tensors.head_index)):
            one = QueryTensors(tensors.film_mul, tensors.film_add, tensors.head_index[m:m + 1], tensors.pair_index[:1],
                               tensors.pair_film_mul[:1], tensors.pair_film_add[:1])
            torch.testing.assert_close(tiny_model.decode(features, one).main[0, 0], together.main[0, m], atol=1e-5, rtol=0)
        for t in range(len(tensors.pair_index)):
            one = QueryTensors(tensors.film_mul, tensors.film_add, tensors.head_index[:1], tensors.pair_index[t:t + 1],
                               tensors.pair_film_mul[t:t + 1], tensors.pair_film_add[t:t + 1])
            torch.testing.assert_close(tiny_model.decode(features, one).pair[0, 0], together.pair[0, t], atol=1e-5, rtol=0)


def test_bare_part_logits_do_not_depend_on_other_queries(tiny_model, rgb_image):
    seg = Segmenter(tiny_model)
    seg.set_queries("handle")
    alone = seg.segment(rgb_image).logits[0]
    seg.set_queries("pot/lid; handle; knife/blade; cup/rim")
    torch.testing.assert_close(seg.segment(rgb_image).logits[1], alone, atol=1e-5, rtol=0)


def test_a_trained_model_answers_a_query_alone_as_within_its_training_classes(rgb_image):
    """Anchored to the model's training classes, a query's maps do not depend on what else is asked: the object
    half of its pair is the one the model was trained with (unanchored, "pot" would take "handle"'s embedding
    instead of "lid"'s)."""
    model = make_tiny(seed=3)
    model.trained_classes = parse_queries("pot/handle; pot/lid; knife/blade; knife/handle; mug/handle")
    seg = Segmenter(model)
    seg.set_queries(list(model.trained_classes))
    together = seg.segment(rgb_image).logits[0]
    seg.set_queries("pot/handle")
    torch.testing.assert_close(seg.segment(rgb_image).logits[0], together, atol=1e-5, rtol=0)
    model.trained_classes = ()
    seg.set_queries("pot/handle")
    assert not torch.allclose(seg.segment(rgb_image).logits[0], together, atol=1e-3)


def test_bgr_grey_rgba_inputs(tiny_model, rgb_image):
    seg = Segmenter(tiny_model)
    seg.set_queries("pot/handle; handle")
    rgb = seg.segment(rgb_image)
    assert np.array_equal(seg.segment(rgb_image[:, :, ::-1].copy(), color_order="bgr").labels, rgb.labels)
    rgba = np.dstack([rgb_image, np.full(rgb_image.shape[:2], 7, np.uint8)])
    assert np.array_equal(seg.segment(rgba).labels, rgb.labels)
    grey = rgb_image[:, :, 1].copy()
    assert np.array_equal(seg.segment(grey).labels, seg.segment(np.dstack([grey] * 3)).labels)
    assert rgb.labels.shape == rgb_image.shape[:2] and rgb.labels.dtype == np.uint8


@pytest.mark.parametrize(
    "image, reason",
    [
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((10, 0), np.uint8), "empty"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10, 3), np.uint16), "8 bits"),
        (np.zeros((10, 10, 5), np.uint8), "shape"),
        (np.zeros((10, 10, 2), np.uint8), "shape"),
        (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
        ([[1, 2], [3, 4]], "numpy"),
        (np.zeros((5000, 5000), np.uint8), "limit"),
    ],
)
def test_bad_images(tiny_model, image, reason):
    seg = Segmenter(tiny_model)
    seg.set_queries("handle")
    with pytest.raises(ImageError, match=reason):
        seg.segment(image)


def test_queries_needed_and_bad_queries_keep_the_old_set(tiny_model, rgb_image):
    seg = Segmenter(tiny_model)
    with pytest.raises(QueryError, match="set_queries"):
        seg.segment(rgb_image)
    seg.set_queries("pot/handle")
    with pytest.raises(QueryError):
        seg.set_queries("pot/<handle>")
    assert [q.name for q in seg.queries] == ["pot/handle"]


def test_preprocess_matches_the_reference_processor(rgb_image):
    """The CIDAS processor as vendored by PartCLIPSeg (transformers 4.29): PIL bilinear resize to 352x352,
    rescale 1/255, ImageNet mean/std -- rebuilt from transformers' own PIL-based transforms."""
    from transformers.image_transforms import normalize, rescale, resize
    from transformers.image_utils import ChannelDimension, PILImageResampling

    resized = resize(rgb_image, (352, 352), resample=PILImageResampling.BILINEAR, input_data_format=ChannelDimension.LAST)
    expected = normalize(rescale(resized.astype(np.float32), 1 / 255), mean=[0.485, 0.456, 0.406],
                         std=[0.229, 0.224, 0.225], input_data_format=ChannelDimension.LAST)
    got = preprocess(as_rgb(rgb_image))
    assert got.shape == (1, 3, 352, 352)
    torch.testing.assert_close(got[0], torch.from_numpy(expected.transpose(2, 0, 1)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ["partclipseg", "clipseg"])
def test_a_batch_of_frames_equals_the_frames_one_by_one(arch, rgb_image):
    """Frames of several cameras (different sizes and colour orders) encoded and decoded as one batch."""
    model = make_tiny(arch)
    segmenter = Segmenter(model)
    segmenter.set_queries("pot/handle; knife/blade; handle")
    other = np.ascontiguousarray(np.random.default_rng(5).integers(0, 256, (90, 200, 3), dtype=np.uint8))
    frames = [(rgb_image, "rgb"), (other, "bgr"), (rgb_image[::-1].copy(), "rgb")]
    assert segmenter.backend.batches_images
    calls = []
    encode = segmenter.backend.encode_image
    segmenter.backend.encode_image = lambda pixels: calls.append(pixels.shape[0]) or encode(pixels)
    batch = segmenter.segment_batch(frames)
    assert calls == [3]  # one encoder call for the three frames
    for (image, order), got in zip(frames, batch):
        want = segmenter.segment(image, order)
        assert got.labels.shape == image.shape[:2]
        np.testing.assert_array_equal(got.labels, want.labels)
        torch.testing.assert_close(got.logits, want.logits, rtol=1e-4, atol=1e-4)
        assert [(p.pixel_count, p.roi) for p in got.parts] == [(p.pixel_count, p.roi) for p in want.parts]
    assert set(batch[0].timings) == {"preprocess", "encode", "decode", "postprocess"}
    segmenter.clear_queries()
    with pytest.raises(QueryError, match="no active queries"):
        segmenter.segment_batch(frames)
def test_affordance_requests_work_in_the_python_api(tiny_model):
    """The Segmenter parses with the bundled affordance vocabulary by default ('grasp' never becomes a part named
    'grasp'); another vocabulary replaces it."""
    from partclipseg.affordances import parse_affordances

    seg = Segmenter(tiny_model)
    assert [(q.name, q.affordance) for q in seg.set_queries("grasp:knife; open:bottle; grasp")] == [
        ("knife/handle", "grasp"), ("bottle/cap", "open"), ("handle", "grasp"), ("knob", "grasp"), ("grip", "grasp")]
    mine = Segmenter(tiny_model, affordances=parse_affordances({"parts": {"spout": "pour"},
                                                                "requests": {"pour": ["spout"]}}))
    assert [q.name for q in mine.set_queries("pour:kettle")] == ["kettle/spout"]
    with pytest.raises(QueryError, match="unknown affordance 'grasp'"):
        mine.set_queries("grasp:knife")


def test_closed_vocabulary_flags_queries_it_never_learned_and_open_never_does(rgb_image):
    closed = make_tiny()
    closed.vocabulary, closed.trained_classes = "closed", (PartQuery("handle", "pot"), PartQuery("lid", "pot"))
    seg = Segmenter(closed)
    seg.set_queries("pot/handle; handle; pot/body; cat/ear; lid; knob")
    assert [q.name for q in seg.unknown_queries] == ["pot/body", "cat/ear", "knob"]
    result = seg.segment(rgb_image)
    assert [p.unknown_query for p in result.parts] == [False, False, True, True, False, True]
    for vocabulary in ("open", None):  # official weights; random weights (nothing stated)
        model = make_tiny()
        model.vocabulary, model.trained_classes = vocabulary, closed.trained_classes
        seg = Segmenter(model)
        seg.set_queries("pot/handle; cat/ear")
        assert seg.unknown_queries == [] and not any(p.unknown_query for p in seg.segment(rgb_image).parts)


def test_text_cache_is_bounded_under_ever_new_queries(tiny_model, rgb_image):
    """Queries keep arriving from topics and services: the text features of old prompts are forgotten beyond
    TEXT_CACHE, the active set's never (its result stays that of a fresh segmenter)."""
    from partclipseg.defaults import TEXT_CACHE

    seg = Segmenter(tiny_model)
    for i in range(TEXT_CACHE // 4 + 50):
        seg.set_queries(f"thing{i}/part{i}; other{i}/piece{i}")
    assert len(seg._text_cache) <= TEXT_CACHE
    seg.set_queries("pot/handle; knife handle")
    fresh = Segmenter(tiny_model)
    fresh.set_queries("pot/handle; knife handle")
    np.testing.assert_array_equal(seg.segment(rgb_image).labels, fresh.segment(rgb_image).labels)


def test_tokenizer_cache_is_bounded_and_tokens_stay_the_same():
    from partclipseg.defaults import TOKEN_CACHE
    from partclipseg.model.network import _TOKENIZERS, tokenize

    reference = tokenize(["pot handle", "knife"], 77)
    tokenizer = _TOKENIZERS[77]
    for start in range(0, TOKEN_CACHE + 500, 500):
        tokenize([" ".join(f"w{i}x" for i in range(start, start + 500))], 77)
    assert len(tokenizer.cache) <= TOKEN_CACHE + 500
    assert torch.equal(tokenize(["pot handle", "knife"], 77), reference)
