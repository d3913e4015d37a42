"""Fit a whole batch of SIRENs to images at once, with a hand-written backward pass.

Model (Sitzmann et al., "Implicit Neural Representations with Periodic Activation Functions",
NeurIPS 2020), at pixel coordinates ``x`` (:func:`~ssl_ws.inr.render.image_coordinates`):

    h_0 = x,   h_i = sin(w0 (W_i h_{i-1} + b_i))  (hidden layers),   y = W_L h_{L-1} + b_L + offset

fitted per INR by Adam (Kingma & Ba, ICLR 2015) on ``E = mean (y - t)^2`` (pixels in [0, 1]),
stopping once ``PSNR = -10 log10(E)`` reaches the target (the INR keeps those parameters).
Backward, batched with ``bmm``, from ``z'_i = (w0 W_i) h + w0 b_i`` and ``c_i = cos(z'_i)``:

    dy      = 2 (y - t) / (N C)
    dW_L    = dy^T h_{L-1},           db_L = sum_n dy,           d = dy W_L
    dz'_i   = d * c_i                                  (in place)
    dW_i    = w0 dz'_i^T h_{i-1},     db_i = w0 sum_n dz'_i,     d = dz'_i (w0 W_i)

Adam runs on one flat ``[B, P]`` buffer (PyTorch parameter order) with a per-INR step count;
finished or failed INRs are compacted out of the active batch. Init (output layer
``U(+-1/sqrt(d_in))``, hidden biases zero): ``dwsnets`` -- hidden layers ``U(+-sqrt(6/d_in)/w0)``,
lr 5e-4 (the published DWSNets data sets); ``siren`` (default) -- first layer ``U(+-1/d_in)``, lr 1e-3.

Reproducibility: view ``k`` of image ``i`` starts from the key ``inr_keys(seed, i, k)``, its
uniforms a counter-based hash of ``(key, parameter index)`` (:func:`keyed_uniform`); on a CPU a
fit is bit-identical in any batch and on any number of threads, so chunked, sharded and
multi-process fits (:mod:`.chunked`) write the same store. A non-finite loss re-initialises the
INR from ``retry_key(key, attempt)`` (:attr:`FitResult.retries`); after ``max_retries`` it is
marked failed, never returned as NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, asdict
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from ..errors import SslWsError
from ..weights import INRSpec, WeightSpace

__all__ = [
    "RECIPES",
    "DEFAULT_RECIPE",
    "FitRecipe",
    "FitResult",
    "fit_inrs",
    "fit_like_store",
    "init_weights",
    "inr_keys",
    "keyed_uniform",
    "psnr_from_mse",
    "retry_key",
    "siren_loss_and_grad",
]


@dataclass(frozen=True)
class FitRecipe:
    """Initialisation and optimiser settings of one fitting recipe."""

    name: str
    first_layer: str  # "siren": U(+-1/d_in); "dwsnets": U(+-sqrt(6/d_in)/w0)
    lr: float
    steps: int = 1000
    target_psnr: float = 40.0
    betas: Tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def to_dict(self) -> Dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


RECIPES: Dict[str, FitRecipe] = {
    "siren": FitRecipe("siren", first_layer="siren", lr=1e-3),
    "dwsnets": FitRecipe("dwsnets", first_layer="dwsnets", lr=5e-4),
}
DEFAULT_RECIPE = "siren"


def get_recipe(name: str) -> FitRecipe:
    if name not in RECIPES:
        raise SslWsError(f"unknown fitting recipe {name!r}; expected one of {sorted(RECIPES)}")
    return RECIPES[name]


@dataclass
class FitResult:
    """What :func:`fit_inrs` returns, one entry per INR of the batch.

    ``ws``: the fitted INRs (float32); ``psnr``: PSNR in dB of the returned parameters
    (NaN where failed); ``steps``: Adam steps taken by the returned fit; ``retries``: how
    many times the INR was re-initialised after a non-finite loss; ``failed``: True where
    every attempt diverged (its parameters are then the last, finite, initialisation).
    """

    ws: WeightSpace
    psnr: Tensor
    steps: Tensor
    retries: Tensor
    failed: Tensor


# ------------------------------------------------------------- keyed random numbers
_M32 = 0xFFFFFFFF
_M31 = 0x7FFFFFFF
_MAX_VIEWS = 1 << 20
_MAX_OBJECTS = 1 << 42


def _mul32(x: Tensor, c: int) -> Tensor:
    """``(x * c) mod 2**32`` for ``0 <= x < 2**32`` without int64 overflow."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _M32


def _mix32(x: Tensor) -> Tensor:
    """A bijective 32-bit integer hash (the 'lowbias32' constants of C. Wellons)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _seed_mask(seed: int, device=None) -> Tensor:
    s = torch.tensor([int(seed) & _M32], dtype=torch.int64, device=device)
    a = _mix32(s ^ 0x2545F491)
    b = _mix32(a ^ 0x9E3779B9)
    return ((a & _M31) << 31) | (b & _M31)


def inr_keys(seed: int, image_ids, view_ids, device=None) -> Tensor:
    """The init key ``[B]`` (int64, 62 bits) of view ``view_ids[b]`` of image ``image_ids[b]``.

    Injective in ``(image, view)`` for a fixed seed; depends on nothing else.
    """
    image_ids = torch.as_tensor(image_ids, dtype=torch.int64, device=device)
    view_ids = torch.as_tensor(view_ids, dtype=torch.int64, device=device)
    if image_ids.numel() and (image_ids.min() < 0 or image_ids.max() >= _MAX_OBJECTS):
        raise SslWsError(f"image ids must lie in [0, 2**42), got {int(image_ids.min())}..{int(image_ids.max())}")
    if view_ids.numel() and (view_ids.min() < 0 or view_ids.max() >= _MAX_VIEWS):
        raise SslWsError(f"view ids must lie in [0, 2**20), got {int(view_ids.min())}..{int(view_ids.max())}")
    return ((image_ids << 20) | view_ids) ^ _seed_mask(seed, image_ids.device)


INIT_SCHEMES = ("independent", "shared")


def init_keys(seed: int, image_ids, view_ids, scheme: str = "independent"):
    """The init key ``[B]`` of view ``view_ids[b]`` of image ``image_ids[b]`` under ``scheme``, the
    one place the shared-init rule lives: ``independent`` -- ``inr_keys(seed, image, view)``, every
    fit from its own init (the published data sets); ``shared`` -- ``inr_keys(seed, 0, view)``,
    view ``k`` of every image from one init, so weights of one view are comparable across images."""
    if scheme not in INIT_SCHEMES:
        raise SslWsError(f"unknown init scheme {scheme!r}; choose from {', '.join(INIT_SCHEMES)}")
    image_ids = torch.as_tensor(image_ids, dtype=torch.int64)
    return inr_keys(seed, image_ids if scheme == "independent" else torch.zeros_like(image_ids), view_ids)


def retry_key(keys: Tensor, attempt: Tensor) -> Tensor:
    """The key of re-initialisation number ``attempt`` (``attempt = 0`` is ``keys`` itself)."""
    attempt = torch.as_tensor(attempt, dtype=torch.int64, device=keys.device)
    a = _mix32((attempt * 0x61C88647) & _M32)
    b = _mix32(a ^ 0x5BD1E995)
    mask = ((a & _M31) << 31) | (b & _M31)
    return torch.where(attempt > 0, keys ^ mask, keys)


def keyed_uniform(keys: Tensor, n: int) -> Tensor:
    """Uniform numbers in (0, 1), ``[B, n]``: element ``j`` of row ``b`` is a hash of
    ``(keys[b], j)`` alone (counter-based, like Philox; here 3 rounds of a 32-bit mixer)."""
    keys = keys.to(torch.int64)
    hi = ((keys >> 31) & _M31).unsqueeze(1)
    lo = (keys & _M31).unsqueeze(1)
    j = torch.arange(n, dtype=torch.int64, device=keys.device).unsqueeze(0)
    s = _mix32(_mix32(j ^ 0x3C6EF372) ^ hi)
    s = _mix32(s ^ lo)
    return ((s >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))


def init_weights(spec: INRSpec, recipe="siren", seeds=None, *, keys: Optional[Tensor] = None) -> WeightSpace:
    """Initial parameters of B SIRENs, one per key (``seeds``: LongTensor ``[B]`` of keys,
    e.g. from :func:`inr_keys`). Row ``b`` depends only on ``seeds[b]``, the spec and the recipe.
    """
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    keys = torch.as_tensor(seeds if keys is None else keys, dtype=torch.int64)
    if keys.dim() != 1:
        raise SslWsError(f"seeds must be a 1-D integer tensor of per-INR keys, got shape {tuple(keys.shape)}")
    u = keyed_uniform(keys, spec.n_params) * 2.0 - 1.0  # U(-1, 1)
    flat = torch.zeros_like(u)
    pos = 0
    last = spec.n_layers - 1
    for i, (o, d) in enumerate(spec.weight_shapes):
        if i == last:
            wb = bb = 1.0 / math.sqrt(d)
        elif i == 0 and recipe.first_layer == "siren":
            wb, bb = 1.0 / d, 0.0
        else:
            wb, bb = math.sqrt(6.0 / d) / spec.w0, 0.0
        flat[:, pos : pos + o * d] = u[:, pos : pos + o * d] * wb
        pos += o * d
        flat[:, pos : pos + o] = u[:, pos : pos + o] * bb
        pos += o
    return WeightSpace.from_flat(flat, spec)


def psnr_from_mse(mse: Tensor) -> Tensor:
    """PSNR in dB for signals in [0, 1]."""
    return -10.0 * torch.log10(mse.clamp_min(1e-30))


# ------------------------------------------------------------ forward / backward
def _views(flat: Tensor, spec: INRSpec):
    """Per-layer (weight, bias) views into a flat ``[B, P]`` buffer."""
    out, pos, batch = [], 0, flat.shape[0]
    for o, d in spec.weight_shapes:
        w = flat[:, pos : pos + o * d].view(batch, o, d)
        pos += o * d
        b = flat[:, pos : pos + o]
        pos += o
        out.append((w, b))
    return out


def siren_loss_and_grad(flat: Tensor, spec: INRSpec, target: Tensor, height: int, width: int, need_grad: bool = True):
    """MSE of each INR against its image and its gradient, both batched.

    The first layer exploits the pixel grid: with ``x = xs[c]``, ``y = ys[r]``,
    ``w0 (W x + b) = A[c] + B[r]`` where ``A = w0 (W_x xs + b)`` and ``B = w0 W_y ys``, so

        sin(A + B) = sin A cos B + cos A sin B,     cos(A + B) = cos A cos B - sin A sin B

    needs sines and cosines of only ``H + W`` (not ``H W``) points per hidden unit, and the
    first-layer gradient is two reductions of ``dz'`` (over rows and over columns).

    Args:
        flat: parameters ``[B, P]`` in PyTorch order.
        target: ``[B, H * W, C]``, pixels row-major (see :func:`~ssl_ws.inr.render.image_coordinates`).

    Returns:
        ``(mse [B], grad [B, P] or None)``.
    """
    w0 = spec.w0
    layers = _views(flat, spec)
    batch, n_pts, n_out = target.shape
    dev = flat.device
    xs = torch.linspace(-1.0, 1.0, width, device=dev, dtype=flat.dtype)
    ys = torch.linspace(-1.0, 1.0, height, device=dev, dtype=flat.dtype)
    hs, cs = [], []
    w1, b1 = layers[0]
    hid = w1.shape[1]
    a = (xs.view(1, width, 1) * w1[:, :, 0].unsqueeze(1)).add_(b1.unsqueeze(1)).mul_(w0)  # [B, W, h]
    bb = (ys.view(1, height, 1) * w1[:, :, 1].unsqueeze(1)).mul_(w0)  # [B, H, h]
    sa, ca, sb, cb = torch.sin(a), torch.cos(a), torch.sin(bb), torch.cos(bb)
    h = torch.mul(sb.unsqueeze(2), ca.unsqueeze(1)).addcmul_(cb.unsqueeze(2), sa.unsqueeze(1)).view(batch, n_pts, hid)
    hs.append(h)
    if need_grad:
        c = torch.mul(cb.unsqueeze(2), ca.unsqueeze(1)).addcmul_(sb.unsqueeze(2), sa.unsqueeze(1), value=-1.0)
        cs.append(c.view(batch, n_pts, hid))
    for w, b in layers[1:-1]:
        z = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2), beta=w0, alpha=w0)
        if need_grad:
            cs.append(torch.cos(z))
        h = torch.sin_(z)
        hs.append(h)
    w_l, b_l = layers[-1]
    y = torch.baddbmm(b_l.unsqueeze(1), h, w_l.transpose(1, 2))
    r = y.sub_(target).add_(spec.output_offset)  # residual y + offset - t, in place
    mse = r.square().mean(dim=(1, 2))
    if not need_grad:
        return mse, None
    dy = r.mul_(2.0 / (n_pts * n_out))
    grads = [None] * (2 * spec.n_layers)
    last = spec.n_layers - 1
    grads[2 * last] = torch.bmm(dy.transpose(1, 2), hs[-1])
    grads[2 * last + 1] = dy.sum(dim=1)
    d = dy * w_l if n_out == 1 else torch.bmm(dy, w_l)  # [B, N, h]; an outer product for C = 1
    for i in range(last - 1, 0, -1):
        dz = d.mul_(cs[i])
        grads[2 * i] = torch.bmm(dz.transpose(1, 2), hs[i - 1]).mul_(w0)
        grads[2 * i + 1] = dz.sum(dim=1).mul_(w0)
        d = torch.bmm(dz, layers[i][0]).mul_(w0)
    dz = d.mul_(cs[0]).view(batch, height, width, hid)
    s_c = dz.sum(dim=1)  # [B, W, h]
    s_r = dz.sum(dim=2)  # [B, H, h]
    gw = torch.stack([(s_c * xs.view(1, width, 1)).sum(1), (s_r * ys.view(1, height, 1)).sum(1)], dim=2)
    grads[0] = gw.mul_(w0)
    grads[1] = s_c.sum(dim=1).mul_(w0)
    grad = torch.cat([g.reshape(batch, -1) for g in grads], dim=1)
    return mse, grad


# --------------------------------------------------------------------- fitting
def fit_inrs(
    images: Tensor,
    spec: Optional[INRSpec] = None,
    *,
    recipe: str = DEFAULT_RECIPE,
    steps: Optional[int] = None,
    lr: Optional[float] = None,
    target_psnr: Optional[float] = None,
    seeds: Optional[Tensor] = None,
    device=None,
    max_retries: int = 2,
    progress: Optional[Callable[[Dict], None]] = None,
    progress_every: int = 25,
    micro_batch: Optional[int] = -1,
) -> FitResult:
    """Fit one SIREN per image, all at once.

    Args:
        images: ``[B, C, H, W]`` floats in [0, 1] (repeat an image to fit several views).
        spec: the INR architecture; default 2 -> 32 -> 32 -> C, sin(30 x), offset 0.5.
        recipe: ``"siren"`` (default) or ``"dwsnets"``; sets init, lr and steps.
        steps, lr, target_psnr: override the recipe (``target_psnr=None`` -> recipe's 40 dB;
            ``float('inf')`` disables the early stop).
        seeds: LongTensor ``[B]`` of per-INR init keys (:func:`inr_keys`); default
            ``inr_keys(0, arange(B), 0)``.
        device: where to fit (default: the images' device).
        max_retries: re-initialisations of an INR whose loss becomes non-finite.
        progress: called every ``progress_every`` steps with a dict
            ``{"step", "active", "finished", "total", "psnr_median"}``.
        micro_batch: INRs per forward/backward pass, so that activations stay in the CPU cache;
            ``-1``: about 0.8 M activations per layer on CPU (32 INRs of 28x28, width 32) and
            the whole batch on GPU; ``None``: the whole batch.
    """
    rec = get_recipe(recipe) if isinstance(recipe, str) else recipe
    steps = rec.steps if steps is None else int(steps)
    lr = rec.lr if lr is None else float(lr)
    target_psnr = rec.target_psnr if target_psnr is None else float(target_psnr)
    if not torch.is_tensor(images) or images.dim() != 4:
        raise SslWsError(f"images must be a tensor [B, C, H, W], got {getattr(images, 'shape', type(images))}")
    device = torch.device(device) if device is not None else images.device
    batch, chans, height, width = images.shape
    spec = spec or INRSpec((2, 32, 32, chans))
    if spec.activation != "sine" or spec.in_dim != 2 or spec.out_dim != chans:
        raise SslWsError(
            f"fitting needs a 2-D SIREN with {chans} output channel(s); got [{spec.describe()}]"
        )
    if steps < 0 or lr <= 0:
        raise SslWsError(f"steps must be >= 0 and lr > 0, got steps={steps}, lr={lr}")
    images = images.to(device=device, dtype=torch.float32)
    if seeds is None:
        seeds = inr_keys(0, torch.arange(batch), torch.zeros(batch, dtype=torch.int64))
    keys = torch.as_tensor(seeds, dtype=torch.int64).to(device)
    if keys.shape != (batch,):
        raise SslWsError(f"seeds must have shape [{batch}], got {tuple(keys.shape)}")

    targets = images.flatten(2).transpose(1, 2).contiguous()  # [B, N, C], row-major pixels
    beta1, beta2 = rec.betas
    eps = rec.eps

    flat = init_weights(spec, rec, keys.cpu()).to_flat().to(device)
    m = torch.zeros_like(flat)
    v = torch.zeros_like(flat)
    t = torch.zeros(batch, device=device)  # per-INR Adam step count
    # Adam's bias corrections by step count, from a table: a tensor power rounds differently in
    # its vectorised and scalar code paths, which would make an INR's fit depend on its place in
    # the batch. With the table, every INR's fit is bit-identical in any batch, on any thread count.
    bias2 = torch.tensor([1.0 - beta2 ** max(k, 1) for k in range(steps + 2)], device=device)
    step_size = torch.tensor([lr / (1.0 - beta1 ** max(k, 1)) for k in range(steps + 2)], device=device)
    attempts = torch.zeros(batch, dtype=torch.int64, device=device)
    idx = torch.arange(batch, device=device)  # original row of each active INR

    out_flat = torch.empty(batch, spec.n_params, device=device)
    out_psnr = torch.full((batch,), float("nan"), device=device)
    out_steps = torch.zeros(batch, dtype=torch.int64, device=device)
    out_failed = torch.zeros(batch, dtype=torch.bool, device=device)
    out_retries = torch.zeros(batch, dtype=torch.int64, device=device)
    if micro_batch == -1:  # about 0.8 M activations (3 MB) per hidden layer and pass
        widest = max(spec.hidden_sizes) if spec.hidden_sizes else 1
        micro_batch = max(8, 800_000 // (height * width * widest)) if device.type == "cpu" else None

    def one_pass(flat, tgt):
        if len(flat) == 1:
            # A batch of one takes other matmul kernels (gemv), whose rounding differs: pad it
            # to two, so that an INR's fit never depends on which INRs share its batch.
            mse, grad = siren_loss_and_grad(flat.expand(2, -1).contiguous(), spec,
                                            tgt.expand(2, -1, -1).contiguous(), height, width)
            return mse[:1], grad[:1]
        return siren_loss_and_grad(flat, spec, tgt, height, width)

    def loss_and_grad(flat, tgt):
        if micro_batch is None or len(flat) <= micro_batch:
            return one_pass(flat, tgt)
        parts = [one_pass(flat[s : s + micro_batch], tgt[s : s + micro_batch])
                 for s in range(0, len(flat), micro_batch)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    active_t = targets
    it = 0
    while idx.numel():
        mse, grad = loss_and_grad(flat, active_t)
        psnr = psnr_from_mse(mse)
        bad = ~torch.isfinite(mse) | ~torch.isfinite(grad).all(dim=1)
        give_up = bad & (attempts >= max_retries)
        done = (~bad & ((psnr >= target_psnr) | (t >= steps))) | give_up
        redo = bad & ~give_up
        if bool(redo.any()):
            attempts = attempts + redo.long()
            new_keys = retry_key(keys[idx[redo]], attempts[redo])
            flat[redo] = init_weights(spec, rec, new_keys.cpu()).to_flat().to(device)
            m[redo] = 0.0
            v[redo] = 0.0
            t[redo] = 0.0
            grad[redo] = 0.0
        if bool(done.any()):
            rows = idx[done]
            if bool(give_up.any()):
                fail_keys = retry_key(keys[idx[give_up]], attempts[give_up])
                flat[give_up] = init_weights(spec, rec, fail_keys.cpu()).to_flat().to(device)
            out_flat[rows] = flat[done]
            out_psnr[rows] = torch.where(give_up[done], torch.full_like(psnr[done], float("nan")), psnr[done])
            out_steps[rows] = t[done].long()
            out_failed[rows] = give_up[done]
            out_retries[rows] = attempts[done]
            keep = ~done
            idx, flat, m, v, t, attempts, grad, active_t = (
                x[keep] for x in (idx, flat, m, v, t, attempts, grad, active_t)
            )
            redo = redo[keep]
            if not idx.numel():
                break
        # Adam on the flat buffer. Rows just re-initialised have zero grad and zero moments,
        # so their update is exactly 0 and their step count stays 0.
        t += (~redo).float()
        m.mul_(beta1).add_(grad, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        tt = t.long().unsqueeze(1)
        denom = (v / bias2[tt]).sqrt_().add_(eps)
        flat.sub_(m.div(denom).mul_(step_size[tt]))
        it += 1
        if progress is not None and it % progress_every == 0:
            finite = out_psnr[torch.isfinite(out_psnr)]
            cur = torch.cat([finite, psnr[~done][torch.isfinite(psnr[~done])]]) if psnr.numel() else finite
            progress(
                {
                    "step": it,
                    "active": int(idx.numel()),
                    "finished": int(batch - idx.numel()),
                    "total": batch,
                    "psnr_median": float(cur.median()) if cur.numel() else float("nan"),
                }
            )
    ws = WeightSpace.from_flat(out_flat, spec)
    return FitResult(ws=ws, psnr=out_psnr, steps=out_steps, retries=out_retries, failed=out_failed)


def fit_like_store(
    store_meta,
    images: Tensor,
    views: int = 1,
    *,
    seed: Optional[int] = None,
    device=None,
    resize: bool = True,
) -> WeightSpace:
    """Fit new images exactly as the INRs of a store were fitted (same spec, recipe,
    steps, lr, target PSNR), e.g. to query a retrieval index with an image.

    Args:
        store_meta: an :class:`~ssl_ws.data.store.INRStore` or its ``meta`` dict.
        images: ``[B, C, H, W]`` in [0, 1]; resized (bilinear, antialiased) to the store's
            image size when ``resize`` is True and the sizes differ, else an error.
        views: independent fits per image; rows are image-major (image 0 views, image 1 ...).
        seed: init seed (default: the store's seed + 1, so new fits never reuse a store key;
            for a store fitted with ``--init shared`` the store's own seed, so that view k of a
            new image starts from the same init as view k of every stored image).

    Returns:
        A :class:`WeightSpace` of ``B * views`` INRs.
    """
    meta = getattr(store_meta, "meta", store_meta)
    try:
        spec = INRSpec.from_dict(meta["spec"])
        fit = meta["fit"]
        size = tuple(meta["image_size"])
    except (KeyError, TypeError) as exc:
        raise SslWsError(f"store metadata lacks the fitting recipe ({exc}); cannot fit new images like it") from None
    if not torch.is_tensor(images) or images.dim() != 4:
        raise SslWsError("images must be a tensor [B, C, H, W] with values in [0, 1]")
    if images.shape[1] != spec.out_dim:
        raise SslWsError(f"the store's INRs have {spec.out_dim} channel(s), the images {images.shape[1]}")
    if tuple(images.shape[2:]) != size:
        if not resize:
            raise SslWsError(f"images are {tuple(images.shape[2:])}, the store was fitted to {size}")
        images = torch.nn.functional.interpolate(
            images.float(), size=size, mode="bilinear", align_corners=True, antialias=True
        ).clamp(0.0, 1.0)
    b = images.shape[0]
    shared = fit.get("init_scheme", "independent") == "shared"
    if seed is None:
        seed = int(fit.get("seed", 0)) + (0 if shared else 1)
    image_ids = torch.arange(b).repeat_interleave(views)
    view_ids = torch.arange(views).repeat(b)
    res = fit_inrs(
        images.repeat_interleave(views, dim=0),
        spec,
        recipe=fit.get("recipe", DEFAULT_RECIPE),
        steps=fit.get("steps"),
        lr=fit.get("lr"),
        target_psnr=fit.get("target_psnr"),
        seeds=init_keys(seed, image_ids, view_ids, "shared" if shared else "independent"),
        device=device,
    )
    if bool(res.failed.any()):
        raise SslWsError(f"{int(res.failed.sum())} fit(s) diverged (non-finite loss after retries)")
    return res.ws
