"""Query buckets of the torch CUDA-graph / torch.compile path: padded decoding equals unpadded decoding (CPU)."""
import pytest
import torch

from partclipseg.backends import BackendOptions, BackendUnavailable, TorchBackend
from partclipseg.backends.buckets import PaddedQuery, as_plain, choose_bucket, pad_query, unpad
from partclipseg.defaults import QUERY_BUCKETS
from partclipseg.model.stages import RowBounds, row_bounds, row_counts
from partclipseg.preprocess import preprocess
from partclipseg.queries import QueryError
from partclipseg.segmenter import Segmenter

QUERY_SETS = ["handle", "pot/handle; knife/blade", "pot/handle; knife/blade; handle; cup/rim; lid",
              "; ".join(f"object{i}/part{i % 5}" for i in range(9)),
              "; ".join(f"object{i}/part{i}" for i in range(16))]


@pytest.mark.parametrize("arch", ["partclipseg", "clipseg"])
def test_padded_decode_equals_unpadded(arch, tiny_model, tiny_clipseg, rgb_image):
    model = tiny_model if arch == "partclipseg" else tiny_clipseg
    segmenter = Segmenter(model)
    with torch.inference_mode():
        features = model.encode_image(preprocess(rgb_image))
        for queries in QUERY_SETS:
            segmenter.set_queries(queries)
            query = segmenter._state.tensors
            padded = pad_query(query, model.config, QUERY_BUCKETS)
            bounds = row_bounds(model.config, padded.bucket)
            assert row_counts(padded) == bounds and padded.rows == row_counts(query)
            assert padded.bucket == choose_bucket(row_counts(query), model.config, QUERY_BUCKETS)
            want = model.decode(features, query)
            got = unpad(model.decode(features, as_plain(padded)), padded.rows)
            torch.testing.assert_close(got.main, want.main, atol=1e-5, rtol=0)
            if want.pair is None:
                assert got.pair is None
            else:
                torch.testing.assert_close(got.pair, want.pair, atol=1e-5, rtol=0)


def test_smallest_bucket_that_holds_the_rows(tiny_model):
    config = tiny_model.config
    assert choose_bucket(RowBounds(3, 2, 2), config, QUERY_BUCKETS) == 1
    assert choose_bucket(RowBounds(4, 2, 2), config, QUERY_BUCKETS) == 2  # K = 2Q+1 = 3 for one query
    assert choose_bucket(RowBounds(9, 5, 5), config, QUERY_BUCKETS) == 4
    assert choose_bucket(RowBounds(33, 17, 17), config, QUERY_BUCKETS) == 16
    with pytest.raises(QueryError, match="largest bucket"):
        choose_bucket(RowBounds(34, 17, 17), config, QUERY_BUCKETS)


def test_torch_backend_pads_only_with_compile_or_graphs(tiny_model):
    plain = TorchBackend(tiny_model)
    segmenter = Segmenter(tiny_model, plain)
    segmenter.set_queries("pot/handle")
    assert not isinstance(segmenter._state.tensors, PaddedQuery)
    with pytest.raises(BackendUnavailable, match="CUDA graphs need device 'cuda'"):
        TorchBackend(tiny_model, BackendOptions(cuda_graphs=True))
