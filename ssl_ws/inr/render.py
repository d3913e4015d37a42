"""Evaluate a whole batch of INRs at once.

For a :class:`~ssl_ws.weights.WeightSpace` of B INRs and coordinates ``x``,

    h_0 = x,   h_i = act(w0 * (W_i h_{i-1} + b_i))  (i < L),   f(x) = W_L h_{L-1} + b_L + offset

computed with batched matrix products: one ``baddbmm`` per layer for the whole
batch, on whatever device the weights live on.

Image coordinates (the convention of every image-space operation in the package):
pixel ``(row r, column c)`` of an ``H x W`` image sits at
``(x, y) = (linspace(-1, 1, W)[c], linspace(-1, 1, H)[r])`` -- an 'xy' meshgrid,
flattened row-major, so ``x`` grows to the right and ``y`` grows downwards.
"""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor

from ..errors import SslWsError
from ..weights import WeightSpace


def image_coordinates(height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
    """Pixel-centre coordinates ``[H * W, 2]`` in [-1, 1], row-major, (x, y) order."""
    ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 2)


def activate(z: Tensor, ws_spec) -> Tensor:
    """The hidden activation of the spec: ``sin(w0 z)`` or ``relu(z)``."""
    if ws_spec.activation == "sine":
        return torch.sin(ws_spec.w0 * z)
    return torch.relu(z)


def render(ws: WeightSpace, coords: Tensor) -> Tensor:
    """Evaluate every INR of ``ws`` at ``coords``.

    Args:
        ws: B INRs.
        coords: ``[N, d_in]`` (the same points for every INR) or ``[B, N, d_in]``.

    Returns:
        ``[B, N, d_out]``.
    """
    return render_layers(ws, coords)[-1] + ws.spec.output_offset


def render_layers(ws: WeightSpace, coords: Tensor) -> List[Tensor]:
    """Every layer's output at ``coords``: ``[h_1, .., h_L]``, ``h_k`` of shape ``[B, N, d_k]``
    (hidden layers after the activation; the last without the output offset)."""
    spec = ws.spec
    coords = coords.to(device=ws.device, dtype=ws.dtype)
    if coords.shape[-1] != spec.in_dim:
        raise SslWsError(f"coordinates have {coords.shape[-1]} dims but the INRs take {spec.in_dim}")
    if coords.dim() == 2:
        coords = coords.unsqueeze(0).expand(len(ws), -1, -1)
    elif coords.dim() != 3 or coords.shape[0] != len(ws):
        raise SslWsError(f"coordinates must be [N, d_in] or [B={len(ws)}, N, d_in], got {tuple(coords.shape)}")
    h, out = coords, []
    last = spec.n_layers - 1
    for i, (w, b) in enumerate(zip(ws.weights, ws.biases)):
        # [B, N, d_in] @ [B, d_in, d_out] + [B, 1, d_out]
        h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        if i < last:
            h = activate(h, spec)
        out.append(h)
    return out


def render_image(ws: WeightSpace, height: int, width: int, chunk: int = 4096) -> Tensor:
    """Render every INR of a 2-D spec as an image ``[B, C, H, W]``.

    ``chunk`` bounds how many INRs are evaluated at once (memory), not a loop
    over single INRs.
    """
    if ws.spec.in_dim != 2:
        raise SslWsError(f"render_image needs INRs of 2-D coordinates, these take {ws.spec.in_dim}")
    coords = image_coordinates(height, width, device=ws.device, dtype=ws.dtype)
    outs = [render(ws[s : s + chunk], coords) for s in range(0, len(ws), chunk)]
    out = torch.cat(outs) if outs else coords.new_zeros(0, height * width, ws.spec.out_dim)
    return out.transpose(1, 2).reshape(len(ws), ws.spec.out_dim, height, width)
