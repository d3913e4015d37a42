"""ssl_ws: self-supervised representation learning on deep weight spaces.

Neural networks (INRs fitted to images) are the data; encoders learn embeddings
of them from their weights. See README.md for the quickstart.

Heavy parts (training, evaluation) are imported lazily: ``import ssl_ws`` stays fast.
"""

from . import augment, models
from .data import INRStore, load_store, write_store
from .errors import SslWsError
from .inr.fit import fit_inrs, fit_like_store
from .inr.render import image_coordinates, render, render_image
from .models import build_encoder, list_encoders
from .models.export import EmbeddingModel, load_encoder, save_encoder
from .models.normalize import WeightNormalizer
from .weights import INRSpec, WeightSpace

__version__ = "0.1.0"

__all__ = [
    "EmbeddingModel",
    "INRSpec",
    "INRStore",
    "SslWsError",
    "WeightNormalizer",
    "WeightSpace",
    "augment",
    "build_encoder",
    "fit_inrs",
    "fit_like_store",
    "image_coordinates",
    "list_encoders",
    "load_encoder",
    "load_store",
    "models",
    "render",
    "render_image",
    "save_encoder",
    "write_store",
    "__version__",
]
