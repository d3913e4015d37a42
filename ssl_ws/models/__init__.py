"""Weight-space encoders: ``encoder(ws: WeightSpace) -> [B, encoder.out_dim]``.

* ``dwsnet``: DWSNet (Navon et al., ICML 2023), fused equivariant layers, invariant head;
* ``nfn``: NP layers (Zhou et al., NeurIPS 2023) with input/output position embeddings;
* ``neural_graph``: transformer over neuron tokens (Kofinas et al., ICLR 2024, simplified);
* ``statnet``: per-layer statistics + MLP (Unterthiner et al., 2020);
* ``mlp``: flat MLP over the parameter vector (not invariant).

Build one by name with :func:`build_encoder`; ``enc.config`` rebuilds it.
"""

from .base import WeightSpaceEncoder, count_parameters
from .dwsnet import DWSNet
from .mlp import FlatMLP
from .neural_graph import NeuralGraphTransformer
from .nfn import NFN
from .registry import ENCODERS, build_encoder, describe_encoders, encoder_options, list_encoders, register_encoder
from .statnet import StatNet

__all__ = [
    "ENCODERS",
    "DWSNet",
    "FlatMLP",
    "NFN",
    "NeuralGraphTransformer",
    "StatNet",
    "WeightSpaceEncoder",
    "build_encoder",
    "count_parameters",
    "describe_encoders",
    "encoder_options",
    "list_encoders",
    "register_encoder",
]
