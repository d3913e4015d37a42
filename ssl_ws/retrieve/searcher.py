"""One search library under the CLI and the HTTP service: a loaded index that answers queries.

A :class:`Searcher` holds a :class:`~ssl_ws.retrieve.index.RetrievalIndex` (read once, read-only),
the encoder that built it and the store it indexes (both loaded when first needed and checked:
the encoder by identity, the store by the digest of the indexed rows). It answers three kinds of
query, each as a list of ``{"query": {...}, "neighbours": [...]}`` in request order, a neighbour
being ``{"row", "label", "class_name", "object", "view", "similarity"}`` (``row``: the stored INR's
id):

* :meth:`Searcher.rows` -- stored INRs by row id (their stored embedding when indexed);
* :meth:`Searcher.params` -- INRs given as flat parameters in the store's layout
  (``parameters_to_vector`` order), embedded by the index's encoder;
* :meth:`Searcher.images` -- images fitted on the fly with the store's recipe (all images of a
  call in one batched fit), embedded, searched.

``ssl-ws query`` and ``ssl-ws serve`` both answer through these methods, so they cannot
disagree.
"""

from __future__ import annotations

import threading
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import SslWsError
from .index import RetrievalIndex


class Searcher:
    """Queries against one retrieval index (see module docstring).

    Args:
        index: a loaded index (or use :meth:`open`).
        store_path: the store to read rows and render from (default: the one the index records).
        ckpt: the encoder (default: the checkpoint the index records, identity-checked).
        device: where INRs are fitted and embedded.
    """

    def __init__(self, index: RetrievalIndex, store_path: Optional[str] = None, ckpt: Optional[str] = None,
                 device="cpu"):
        self.index = index
        self.store_path = store_path
        self.ckpt = ckpt
        self.device = torch.device(device) if not isinstance(device, torch.device) else device
        self._model = None
        self._lock = threading.Lock()  # one model load and one batched fit at a time

    @classmethod
    def open(cls, index_dir: str, store_path: Optional[str] = None, ckpt: Optional[str] = None, device="auto",
             check_store: bool = True) -> "Searcher":
        """Load ``index_dir``; with ``check_store``, refuse a store that changed since the index was built."""
        from ..devices import resolve_device
        from .query import check_recorded_store, index_store

        searcher = cls(RetrievalIndex.load(index_dir), store_path, ckpt, resolve_device(device))
        if ckpt:  # an encoder named explicitly is checked (readable, the index's identity) before any answer
            searcher.model
        if check_store:
            if store_path:
                index_store(searcher.index, store_path)
            else:
                check_recorded_store(searcher.index)
        return searcher

    # ------------------------------------------------------------- resources
    @property
    def store(self):
        from .query import index_store

        return index_store(self.index, self.store_path)

    @property
    def model(self):
        if self._model is None:
            from .query import index_encoder

            with self._lock:
                if self._model is None:
                    self._model = index_encoder(self.index, self.ckpt).to(self.device)
        return self._model

    @property
    def class_names(self) -> List[str]:
        return list(self.index.info.get("class_names") or [])

    def class_label(self, value: Union[str, int, None], what: str = "filter_class") -> Optional[int]:
        """A class filter given as a class name or a label number (None: no filter)."""
        if value is None:
            return None
        names = self.class_names
        if isinstance(value, str) and value in names:
            return names.index(value)
        try:
            lab = int(value) if not isinstance(value, bool) else -1
        except (TypeError, ValueError):
            lab = -1
        if lab < 0 or (names and lab >= len(names)):
            raise SslWsError(f"{what} {value!r} is neither a class name ({', '.join(names[:12])}) nor a label "
                             f"0..{max(len(names) - 1, 0)}")
        return lab

    def info(self) -> Dict:
        """What a client needs to know: size, encoder, store, INR architecture, classes, image size."""
        info = self.index.info
        store, enc = info.get("store") or {}, info.get("encoder") or {}
        return {"size": len(self.index), "dim": int(self.index.emb.shape[1]),
                "encoder": {"identity": enc.get("identity"), "name": (enc.get("config") or {}).get("name"),
                            "path": enc.get("path"), "out_dim": enc.get("out_dim")},
                "store": {k: store.get(k) for k in ("path", "rows", "digest")}, "spec": store.get("spec"),
                "n_params": int(self._spec().n_params) if store.get("spec") else None,
                "class_names": self.class_names, "image_size": list(info.get("image_size") or []),
                "channels": int(info.get("channels", 1)), "split": info.get("split"),
                "index": info.get("index"), "rows": [int(self.index.rows.min()), int(self.index.rows.max())]}

    def _spec(self):
        from ..weights import INRSpec

        return INRSpec.from_dict((self.index.info.get("store") or {})["spec"])

    # --------------------------------------------------------------- queries
    def rows(self, rows: Sequence[int], k: int, *, keep_self: bool = False, exclude_views: bool = False,
             label: Optional[int] = None) -> List[Dict]:
        """Neighbours of stored INRs (see :func:`~ssl_ws.retrieve.query.answer_rows`)."""
        from .query import answer_rows, check_row

        _check_k(k)
        rows = [_row_id(r) for r in rows]
        for r in rows:
            check_row(self.index, r)
        outside = any(self.index.position_of_row(r) is None for r in rows)
        model, store = (self.model, self.store) if outside else (None, None)
        return list(answer_rows(self.index, rows, k, keep_self=keep_self, exclude_views=exclude_views, label=label,
                                model=model, store=store, device=self.device))

    def params(self, params, k: int, *, label: Optional[int] = None) -> List[Dict]:
        """Neighbours of INRs given as flat parameters ``[Q, P]`` in the store's layout."""
        from ..eval.embed import embed_weights
        from ..weights import WeightSpace

        _check_k(k)
        spec = self._spec()
        try:
            with np.errstate(over="ignore"):  # a value beyond float32 becomes Inf, refused below
                arr = np.asarray(params, dtype=np.float32)
        except (TypeError, ValueError):
            raise SslWsError("params must be a list of equally long lists of numbers") from None
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != spec.n_params or arr.shape[0] == 0:
            raise SslWsError(f"params must be [n, {spec.n_params}] (the store's INRs [{spec.describe()}]), got "
                             f"shape {list(arr.shape)}")
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if bad.size:
            raise SslWsError(f"params[{int(bad[0])}] holds a NaN or an Inf")
        ws = WeightSpace.from_flat(torch.from_numpy(arr), spec)
        emb = embed_weights(self.model, ws, device=self.device)
        return [{"query": {"params": i}, "neighbours": self.index.neighbours(e, k, label=label)}
                for i, e in enumerate(emb)]

    def images(self, images: torch.Tensor, k: int, *, views: int = 1, label: Optional[int] = None,
               names: Optional[Sequence[str]] = None) -> List[Dict]:
        """Neighbours of images ``[Q, C, H, W]`` in [0, 1] at the store's image size, fitted with the store's
        recipe in one batched fit (``Q x views`` INRs)."""
        return self.images_with_fits(images, k, views=views, label=label, names=names)[0]

    def images_with_fits(self, images: torch.Tensor, k: int, *, views: int = 1, label: Optional[int] = None,
                         names: Optional[Sequence[str]] = None):
        """:meth:`images` and the fitted INRs (a WeightSpace, image-major) for pictures of the query."""
        from .query import embed_images

        _check_k(k)
        if views < 1:
            raise SslWsError(f"views must be positive, got {views}")
        model, store = self.model, self.store
        with self._lock:
            q, ws = embed_images(self.index, images, model, store, views=views, device=self.device)
        names = list(names) if names is not None else [f"images[{i}]" for i in range(len(q))]
        return [{"query": {"image": n}, "neighbours": self.index.neighbours(e, k, label=label)}
                for n, e in zip(names, q)], ws

    def _image_shape(self):
        """``(channels, (H, W))`` the store's INRs were fitted to: what a query image must have."""
        info = self.index.info
        channels = int(info["channels"]) if "channels" in info else int(self.store.channels)
        return channels, tuple(info.get("image_size") or self.store.image_size)

    def load_images(self, paths: Sequence[str], resize: bool = False) -> torch.Tensor:
        """Image files as ``[Q, C, H, W]`` for :meth:`images`, each checked (``query --image``)."""
        from .query import load_image

        channels, size = self._image_shape()
        return torch.cat([load_image(p, channels, size, resize=resize) for p in paths])

    def decode_images(self, blobs: Sequence[bytes], resize: bool = False, max_pixels: int = None) -> torch.Tensor:
        """Encoded images (PNG, JPEG ...) as ``[Q, C, H, W]`` for :meth:`images`, checked as files are."""
        from .query import image_tensor
        from ..files import IMAGE_PIXELS, decode_image

        channels, size = self._image_shape()
        return torch.cat([image_tensor(decode_image(blob, f"images[{i}]", max_pixels or IMAGE_PIXELS), f"images[{i}]",
                                       channels, size, resize=resize) for i, blob in enumerate(blobs)])

    def picture(self, answer: Dict, path: str, caption: Sequence[str], query_ws=None) -> str:
        """A PNG of one answer: the query's render (a stored row, or the first INR of ``query_ws`` for an image
        query) beside its neighbours', captions green where a neighbour shares the query's class."""
        from ..inr.render import render_image
        from .gallery import neighbour_captions, query_picture, render_rows

        store, nb = self.store, answer["neighbours"]
        h, w = (int(v) for v in store.image_size)
        if query_ws is not None:
            q_img = render_image(query_ws[0].to(self.device), h, w).clamp(0, 1).cpu()[0]
        else:
            q_img = render_rows(store, [answer["query"]["row"]], device=self.device)[0]
        nb_imgs = render_rows(store, [n["row"] for n in nb], device=self.device)
        label = answer["query"].get("label")
        match = [n["label"] == label for n in nb] if label is not None else None
        query_picture(q_img, nb_imgs, list(caption), neighbour_captions(nb), path=path, match=match)
        return path

    def render_png(self, row: int, scale: int = None) -> bytes:
        """A stored INR rendered from its weights on the store's grid, as PNG bytes (upscaled for thumbnails)."""
        import io

        from .gallery import render_rows, tile_scale, to_pil
        from .query import check_row

        row = _row_id(row)
        check_row(self.index, row)
        store = self.store
        img = render_rows(store, [row], device=self.device)[0]
        h, w = img.shape[-2:]
        buf = io.BytesIO()
        to_pil(img, scale or tile_scale(int(h), int(w))).save(buf, format="PNG")
        return buf.getvalue()


def _check_k(k) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SslWsError(f"k must be a positive integer, got {k!r}")


def _row_id(r) -> int:
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)):
        raise SslWsError(f"row ids must be integers, got {r!r}")
    return int(r)
