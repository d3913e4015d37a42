"""ssl_ws: self-supervised representation learning on deep weight spaces.

Neural networks (INRs fitted to images) are the data; encoders learn embeddings
of them from their weights. See README.md for the quickstart and DESIGN notes.
"""

from .errors import SslWsError
from .inr.render import image_coordinates, render, render_image
from .normalize import WeightNormalizer
from .weights import INRSpec, WeightSpace

__version__ = "0.1.0"

__all__ = [
    "INRSpec",
    "SslWsError",
    "WeightNormalizer",
    "WeightSpace",
    "image_coordinates",
    "render",
    "render_image",
    "__version__",
]
