"""Rendered-pixel encoders: the functional view as a baseline inside the encoder registry.

The INR rendered on the store's pixel grid (the functional view of Navon et al., ICML 2023,
Sec. 6), trained by the same code as the weight-space encoders:

    x = clip(f_theta(grid), 0, 1)    [B, C, H, W],  grid = image_coordinates(H, W)

``pixels-linear``: ``Linear(standardize(flatten(x)))``, ``ssl-ws baselines``' ``pixels-lr`` trained
by SGD. ``pixels-cnn``: :class:`ConvFeatures` (the baselines' small CNN) on ``standardize(x)``,
flattened, then ``Linear`` to ``out_dim``. Standardization is a BatchNorm without affine
parameters (per feature, or per channel for the CNN). Both read the *raw* weights
(``uses_raw_weights``) and depend only on ``f_theta``, so they are exactly invariant to every
weight symmetry. ``image_size``: the store's (``meta.json``) when built from a config, else 28 x 28.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from torch import Tensor, nn

from ..errors import SslWsError
from ..inr.render import render_image
from ..weights import INRSpec, WeightSpace
from .base import WeightSpaceEncoder

DEFAULT_IMAGE_SIZE: Tuple[int, int] = (28, 28)  # the DWSNets MNIST / FMNIST INRs


def store_image_size(store) -> Tuple[Tuple[int, int], str]:
    """``((H, W), where it came from)``: the store's ``meta.json`` ``image_size``, else 28x28.

    Every store written by ``fit`` or ``import`` records its image size; a store without
    one is rendered on the 28x28 grid of the published MNIST / FMNIST INRs, and the
    second element says so (``"default"``).
    """
    size = tuple(int(v) for v in (store.image_size or ()))
    if len(size) == 2 and min(size) > 0:
        return size, "store"
    return DEFAULT_IMAGE_SIZE, "default"


def render_pixels(ws: WeightSpace, image_size: Sequence[int]) -> Tensor:
    """``clip(f_theta(grid), 0, 1)`` as images ``[B, C, H, W]`` (the baselines' renders)."""
    h, w = image_size
    return render_image(ws, int(h), int(w)).clamp(0.0, 1.0)


def render_rows(
    store,
    rows: Sequence[int],
    device=None,
    batch_size: int = 1024,
    size: Optional[Sequence[int]] = None,
    progress: bool = False,
    desc: str = "render",
) -> torch.Tensor:
    """Renders ``[n, C, H, W]`` (CPU, [0, 1]) of store rows at ``size`` (default: the store's image
    size; 28 x 28 for a store that records none, as ``ssl-ws baselines``).

    ``batch_size`` INRs are read from the memmap and rendered at once (bounding memory);
    the output is allocated once, so rendering 25k INRs holds one copy of the images.
    """
    from tqdm.auto import tqdm

    if size is None:
        size, _ = store_image_size(store)
    h, w = (int(v) for v in size)
    rows = np.asarray(rows, dtype=np.int64)
    out = torch.empty(rows.size, store.spec.out_dim, h, w)
    with tqdm(total=rows.size, desc=desc, unit="INR", disable=not progress, leave=False) as bar:
        for s in range(0, rows.size, batch_size):
            ws = store.weights(rows[s : s + batch_size], device=device)
            out[s : s + len(ws)] = render_pixels(ws, (h, w)).cpu()
            bar.update(len(ws))
    return out


class ConvFeatures(nn.Sequential):
    """``conv3x3(C->32) -> ReLU -> conv3x3(32->64) -> ReLU -> maxpool 2`` (same padding):
    ``[B, C, H, W] -> [B, 64, H // 2, W // 2]``. Shared by ``pixels-cnn`` and ``ssl-ws baselines``."""

    def __init__(self, channels: int, widths: Tuple[int, int] = (32, 64)):
        super().__init__(
            nn.Conv2d(channels, widths[0], 3, padding=1), nn.ReLU(),
            nn.Conv2d(widths[0], widths[1], 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.out_channels = int(widths[1])


def _image_size(image_size) -> Tuple[int, int]:
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise SslWsError(f"image_size must be [height, width], got {image_size!r}") from None
    if h < 2 or w < 2:
        raise SslWsError(f"image_size must be at least 2 x 2, got {image_size!r}")
    return h, w


class _PixelEncoder(WeightSpaceEncoder):
    invariant = True
    uses_raw_weights = True
    takes_image_size = True  # build_encoder_from_config fills image_size from the store

    def __init__(self, spec: Union[INRSpec, Mapping], image_size: Optional[Sequence[int]], out_dim: int):
        super().__init__(spec, out_dim)
        if self.spec.in_dim != 2:
            raise SslWsError(f"encoder {self.name!r} renders images: it needs INRs of 2-D coordinates, "
                             f"these take {self.spec.in_dim}")
        self.image_size = _image_size(DEFAULT_IMAGE_SIZE if image_size is None else image_size)
        self._record(image_size=list(self.image_size), out_dim=out_dim)

    def pixels(self, raw: WeightSpace) -> Tensor:
        return render_pixels(raw, self.image_size)


class PixelsLinear(_PixelEncoder):
    """A linear map of the standardized render: ``Linear(BN(flatten(x)))``.

    Args:
        spec: the INR architecture (2-D coordinates).
        image_size: ``[H, W]`` of the render (default: the store's; 28 x 28 by hand).
        out_dim: embedding size.
    """

    name = "pixels-linear"
    description = "baseline: the INR rendered on the pixel grid -> standardize -> linear"

    def __init__(self, spec: Union[INRSpec, Mapping], image_size: Optional[Sequence[int]] = None, out_dim: int = 64):
        super().__init__(spec, image_size, out_dim)
        d = self.spec.out_dim * self.image_size[0] * self.image_size[1]
        self.standardize = nn.BatchNorm1d(d, affine=False)
        self.linear = nn.Linear(d, out_dim)

    def encode(self, ws: WeightSpace, raw: WeightSpace) -> Tensor:
        return self.linear(self.standardize(self.pixels(raw).flatten(1)))


class PixelsCNN(_PixelEncoder):
    """The baselines' small CNN on the standardized render, its last layer of size ``out_dim``.

    Args:
        spec: the INR architecture (2-D coordinates).
        image_size: ``[H, W]`` of the render (default: the store's; 28 x 28 by hand).
        out_dim: embedding size.
    """

    name = "pixels-cnn"
    description = "baseline: the INR rendered on the pixel grid -> small CNN (2 conv layers, max-pool) -> linear"

    def __init__(self, spec: Union[INRSpec, Mapping], image_size: Optional[Sequence[int]] = None, out_dim: int = 64):
        super().__init__(spec, image_size, out_dim)
        c = self.spec.out_dim
        self.standardize = nn.BatchNorm2d(c, affine=False)
        self.features = ConvFeatures(c)
        h, w = self.image_size
        self.linear = nn.Linear(self.features.out_channels * (h // 2) * (w // 2), out_dim)

    def encode(self, ws: WeightSpace, raw: WeightSpace) -> Tensor:
        return self.linear(self.features(self.standardize(self.pixels(raw))).flatten(1))
