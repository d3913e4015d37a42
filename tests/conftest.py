import pytest
import torch

from ssl_ws import INRSpec, WeightSpace


@pytest.fixture
def spec():
    return INRSpec((2, 32, 32, 1))


def random_ws(spec, batch=4, seed=0, scale=1.0):
    """A batch of random INRs whose renders are non-trivial (scaled like a fitted SIREN)."""
    g = torch.Generator().manual_seed(seed)
    weights, biases = [], []
    for i, ((o, d), (bo,)) in enumerate(zip(spec.weight_shapes, spec.bias_shapes)):
        bound = (1.0 / d) if i == 0 else (6.0 / d) ** 0.5 / max(spec.w0, 1.0)
        weights.append((torch.rand(batch, o, d, generator=g) * 2 - 1) * bound * scale)
        biases.append((torch.rand(batch, bo, generator=g) * 2 - 1) * bound * scale)
    return WeightSpace(weights, biases, spec)


@pytest.fixture
def make_ws():
    return random_ws
