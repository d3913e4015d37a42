"""Encoder-only export: a trained encoder with everything needed to use it.

An :class:`EmbeddingModel` maps *raw* INR weights to ``z = encoder(normalize(ws))``, with the
normalizer fitted on the training split (:class:`~ssl_ws.models.normalize.WeightNormalizer`),
the INR spec and the encoder's constructor arguments shipped with the weights.

File format (``torch.save`` of plain dicts/lists/str/numbers/tensors, loadable with
``torch.load(..., weights_only=True)``)::

    {"format": "ssl_ws.encoder", "version": 1,
     "spec": INRSpec.to_dict(), "encoder_config": {"name": ..., **kwargs},
     "encoder_state": encoder.state_dict(), "normalizer": WeightNormalizer.to_dict(),
     "info": {...}, "config": {...} | None}

Training checkpoints (``ssl-ws pretrain``/``train``) carry the same payload under
``"ssl_ws_encoder"``; :func:`load_encoder` accepts either.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from typing import Any, Dict, Mapping, Optional

import torch
from torch import Tensor, nn

from ..atomic import atomic_write
from ..errors import SslWsError
from .base import encode_weights
from .normalize import WeightNormalizer
from ..weights import INRSpec, WeightSpace

FORMAT = "ssl_ws.encoder"
VERSION = 1
CHECKPOINT_KEY = "ssl_ws_encoder"


def _plain(obj: Any) -> Any:
    """Convert to what ``weights_only=True`` can load: dict/list/str/int/float/bool/None/Tensor."""
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        try:
            return obj.item()
        except (TypeError, ValueError):
            pass
    if hasattr(obj, "tolist"):  # numpy arrays
        return obj.tolist()
    try:  # OmegaConf containers, Paths, ...
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(obj, (DictConfig, ListConfig)):
            return _plain(OmegaConf.to_container(obj, resolve=True))
    except ImportError:  # pragma: no cover
        pass
    return str(obj)


class EmbeddingModel(nn.Module):
    """Normalizer + encoder: raw :class:`WeightSpace` ``[B]`` -> embeddings ``[B, D]``.

    Args:
        encoder: an ``nn.Module`` with ``forward(ws) -> [B, out_dim]`` and ``.out_dim``.
        normalizer: the weight normalizer fitted on the training split.
        spec: the INR architecture the encoder was built for.
        encoder_config: ``{"name": <registry name>, **kwargs}`` so that
            ``build_encoder(name, spec, **kwargs)`` rebuilds the architecture.
        info: free-form provenance (source store, run dir, ...), plain values.
    """

    def __init__(
        self,
        encoder: nn.Module,
        normalizer: WeightNormalizer,
        spec: INRSpec,
        encoder_config: Dict,
        info: Optional[Dict] = None,
    ):
        super().__init__()
        if normalizer.spec != spec:
            raise SslWsError(
                f"normalizer was fitted for [{normalizer.spec.describe()}] but the encoder is for [{spec.describe()}]"
            )
        if "name" not in encoder_config:
            raise SslWsError("encoder_config must hold the encoder's registry 'name'")
        self.encoder = encoder
        self.normalizer = normalizer
        self.spec = spec
        self.encoder_config = dict(_plain(encoder_config))
        self.info = dict(_plain(info or {}))

    @property
    def out_dim(self) -> int:
        return int(self.encoder.out_dim)

    def reinitialized(self, seed: int = 0) -> "EmbeddingModel":
        """The same architecture and normalizer with fresh random weights (``torch.manual_seed(seed)``
        before building, as a run seeded ``seed`` builds its encoder): the random-init baseline
        every pretrained number is read against. The global RNG state is left as it was."""
        from .registry import build_encoder

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            enc = build_encoder(**{**self.encoder_config, "spec": self.spec})
        return EmbeddingModel(enc, self.normalizer, self.spec, dict(self.encoder_config),
                              info={**self.info, "kind": "random-init baseline", "seed": int(seed)}).eval()

    def forward(self, ws: WeightSpace) -> Tensor:
        if not isinstance(ws, WeightSpace):
            raise SslWsError(f"an EmbeddingModel takes a WeightSpace, got {type(ws).__name__}")
        if ws.spec != self.spec:
            raise SslWsError(
                f"this encoder was trained on INRs [{self.spec.describe()}] but got INRs [{ws.spec.describe()}]"
            )
        return encode_weights(self.encoder, self.normalizer, ws)

    @property
    def identity(self) -> str:
        """Short hex digest of the encoder config, spec, normalizer and weights.

        Equal for a model and its save/load round trip; differs when any weight does.
        """
        h = hashlib.sha256()
        h.update(json.dumps({"spec": self.spec.to_dict(), "encoder": self.encoder_config}, sort_keys=True).encode())

        def feed(name: str, t: Tensor):
            t = t.detach().to("cpu", torch.float32).contiguous()
            h.update(name.encode())
            h.update(str(tuple(t.shape)).encode())
            h.update(t.numpy().tobytes())

        for k, v in sorted(self.encoder.state_dict().items()):
            if torch.is_tensor(v) and v.is_floating_point():
                feed(k, v)
        nd = self.normalizer.to_dict()
        for k in ("w_mean", "w_std", "b_mean", "b_std"):
            for i, t in enumerate(nd[k]):
                feed(f"normalizer.{k}.{i}", t)
        return h.hexdigest()[:12]

    def payload(self, config: Optional[Dict] = None) -> Dict:
        """The exported dict (plain values only; see the module docstring)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "spec": self.spec.to_dict(),
            "encoder_config": _plain(self.encoder_config),
            "encoder_state": {k: v.detach().cpu().clone() for k, v in self.encoder.state_dict().items()},
            "normalizer": _plain(self.normalizer.to_dict()),
            "info": _plain(self.info),
            "config": _plain(config),
        }

    def __repr__(self) -> str:
        return (
            f"EmbeddingModel({self.encoder_config.get('name')}, out_dim={self.out_dim}, "
            f"spec=[{self.spec.describe()}], identity={self.identity})"
        )


def save_encoder(model: EmbeddingModel, path, config: Optional[Dict] = None) -> str:
    """Write ``model`` (and optionally the training config) to ``path`` atomically."""
    path = os.fspath(path)
    with atomic_write(path, "wb") as fh:
        torch.save(model.payload(config), fh)
    return path


def export_checkpoint(path, out, model: Optional[EmbeddingModel] = None) -> EmbeddingModel:
    """Write the encoder of the checkpoint ``path`` (``model``: it, loaded already) to ``out`` with the
    run's config, recording the checkpoint's absolute path (``ssl-ws export``); returns the model."""
    model = load_encoder(path) if model is None else model
    config = load_payload(path).get("config")
    model.info["checkpoint"] = os.path.abspath(path)
    save_encoder(model, out, config=config)
    return model


def model_from_payload(payload: Mapping, source: str = "<payload>") -> EmbeddingModel:
    """Rebuild an :class:`EmbeddingModel` from an exported payload dict."""
    if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
        raise SslWsError(f"{source} is not an ssl_ws encoder export")
    if int(payload.get("version", 0)) > VERSION:
        raise SslWsError(f"{source} was written by a newer ssl_ws (format version {payload.get('version')}); upgrade ssl_ws")
    from . import build_encoder  # the registry; imported lazily (models/__init__ may import this module)

    try:
        spec = INRSpec.from_dict(payload["spec"])
        cfg = dict(payload["encoder_config"])
        normalizer = WeightNormalizer.from_dict(payload["normalizer"])
        state = payload["encoder_state"]
    except (KeyError, TypeError, ValueError) as exc:
        raise SslWsError(f"{source} is an incomplete ssl_ws encoder export ({exc})") from None
    kwargs = {k: v for k, v in cfg.items() if k != "name"}
    encoder = build_encoder(cfg["name"], spec, **kwargs)
    try:
        encoder.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise SslWsError(f"{source}: encoder weights do not fit a {cfg['name']} with {kwargs}: {first}") from None
    model = EmbeddingModel(encoder, normalizer, spec, cfg, info=payload.get("info") or {})
    model.eval()
    return model


def _read(path: str, map_location) -> Any:
    if not os.path.exists(path):
        raise SslWsError(f"no such checkpoint or encoder file: {path}")
    if os.path.isdir(path):
        raise SslWsError(f"{path} is a directory; give the path of an encoder.pt or a .ckpt file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
        raise SslWsError(
            f"cannot read {path}: not an ssl_ws checkpoint/encoder file, or truncated/corrupt ({type(exc).__name__})"
        ) from None


def load_encoder(path, map_location="cpu") -> EmbeddingModel:
    """Load an exported ``encoder.pt`` or a training checkpoint (``.ckpt``) as an
    :class:`EmbeddingModel` in eval mode. Missing, corrupt or foreign files raise
    :class:`~ssl_ws.errors.SslWsError` with one line."""
    path = os.fspath(path)
    obj = _read(path, map_location)
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        model = model_from_payload(obj, path)
    elif isinstance(obj, Mapping) and CHECKPOINT_KEY in obj:
        model = model_from_payload(obj[CHECKPOINT_KEY], path)
    else:
        raise SslWsError(f"{path} is neither an ssl_ws encoder export nor an ssl_ws training checkpoint")
    return model.to(map_location) if map_location is not None and not callable(map_location) else model


def load_payload(path, map_location="cpu") -> Dict:
    """The raw payload (encoder export or checkpoint's ``ssl_ws_encoder``) of a file."""
    path = os.fspath(path)
    obj = _read(path, map_location)
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        return dict(obj)
    if isinstance(obj, Mapping) and CHECKPOINT_KEY in obj:
        return dict(obj[CHECKPOINT_KEY])
    raise SslWsError(f"{path} is neither an ssl_ws encoder export nor an ssl_ws training checkpoint")
