"""The fused DWS layer computes the same function as the block-per-module implementation
(benchmarks/blockwise_dwsnet.py: one module per (input tensor, output tensor) block),
with the same number of parameters."""

import os
import sys

import pytest
import torch

from ssl_ws import INRSpec
from ssl_ws.models import build_encoder, count_parameters

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
from blockwise_dwsnet import BlockwiseDWSNet  # noqa: E402


@pytest.mark.parametrize("sizes", [(2, 6, 1), (2, 7, 5, 3), (3, 4, 5, 6, 2)])
@pytest.mark.parametrize("options", [dict(set_layer="deepsets", pooling="max"),
                                     dict(set_layer="sab", pooling="mean", num_heads=2)])
def test_fused_equals_blockwise(sizes, options, make_ws):
    torch.manual_seed(0)
    spec = INRSpec(sizes)
    fused = build_encoder("dwsnet", spec, hidden=6, n_layers=2, **options).eval()
    block = BlockwiseDWSNet.from_fused(fused).eval()
    assert count_parameters(block) == count_parameters(fused)
    ws = make_ws(spec, batch=3, seed=5, scale=10.0)
    torch.testing.assert_close(block(ws), fused(ws), atol=1e-5, rtol=1e-4)
    # and a different set of weights gives a different function (the check can fail)
    other = BlockwiseDWSNet.from_fused(build_encoder("dwsnet", spec, hidden=6, n_layers=2, **options)).eval()
    assert (other(ws) - fused(ws)).abs().max() > 1e-4
