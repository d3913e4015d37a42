"""Retrieval index: an encoder's embeddings of a store, searchable with faiss.

Embeddings are post-processed (:func:`~ssl_ws.retrieve.retrieval.postprocess`, fitted on the
indexed embeddings, applied to every query; default ``center``, older indexes load as ``l2``)
and the neighbours of ``q`` are ``argtop-k_x <q, x>``. Kinds (faiss, Johnson et al., IEEE TBD
2019): ``flat`` ``IndexFlatIP``, exact (default); ``hnsw`` ``IndexHNSWFlat`` (Malkov & Yashunin,
TPAMI 2018; ``M``, ``efSearch``) and ``ivf`` ``IndexIVFFlat`` (Jegou et al., TPAMI 2011;
``nlist``, ``nprobe``), approximate.

On disk (a directory, every file readable without ssl_ws)::

    index.json       format/version, encoder identity + path, store path, split, index kind
                     and parameters, post-processing, dim, class names, image size, and the
                     SHA-256 of every other file ("files"), verified when the index is loaded
    embeddings.npy   float32 [n, D] raw (un-normalized) embeddings: rebuild any index from them
    post.npz         float64 mean [D] (and proj [D, D'] for whitening) of the post-processing
    rows.npy labels.npy object_ids.npy view_ids.npy    int64 [n]; index position i is store row rows[i]
    index.faiss      the faiss index (faiss.write_index)
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..atomic import atomic_directory
from ..errors import SslWsError
from ..files import read_json
from ..eval.knn import l2_normalize
from .retrieval import POSTPROCESS, Postprocess, median_random_cosine, postprocess

DEFAULT_POST = "center"

FORMAT = "ssl_ws.index"
VERSION = 2  # 2: index.json records the SHA-256 of the other files
INDEX_KINDS = ("flat", "hnsw", "ivf")
_ARRAYS = ("rows", "labels", "object_ids", "view_ids")


def _faiss():
    try:
        import faiss
    except ImportError:
        raise SslWsError("the retrieval index needs faiss (pip install faiss-cpu)") from None
    return faiss


def check_index_params(**params) -> None:
    """Every index parameter given (not None) must be a positive integer (``hnsw_m=0`` -> one line)."""
    for name, value in params.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise SslWsError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")


def build_faiss_index(
    emb: np.ndarray,
    kind: str = "flat",
    hnsw_m: int = 32,
    ef_construction: int = 80,
    ef_search: int = 64,
    nlist: Optional[int] = None,
    nprobe: int = 8,
    seed: int = 0,
) -> Tuple[object, Dict]:
    """A faiss index of the L2-normalized ``emb`` and the parameters it was built with."""
    faiss = _faiss()
    if kind not in INDEX_KINDS:
        raise SslWsError(f"unknown index kind {kind!r}; expected one of {INDEX_KINDS}")
    check_index_params(hnsw_m=hnsw_m, ef_construction=ef_construction, ef_search=ef_search, nprobe=nprobe, nlist=nlist)
    x = l2_normalize(emb)
    n, d = x.shape
    if n == 0:
        raise SslWsError("cannot index zero embeddings")
    params: Dict = {"kind": kind}
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(ef_construction)
        index.hnsw.efSearch = int(ef_search)
        params.update(M=int(hnsw_m), efConstruction=int(ef_construction), efSearch=int(ef_search))
    else:
        # rule of thumb: ~4 sqrt(n) cells, at least ~39 training points per cell (faiss warns below)
        nlist = int(nlist) if nlist else max(1, min(int(4 * math.sqrt(n)), n // 39))
        if nlist > n:
            raise SslWsError(f"an IVF index with {nlist} cells needs at least {nlist} embeddings, got {n}")
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = int(seed)
        index.train(x)
        index.nprobe = int(min(nprobe, nlist))
        params.update(nlist=nlist, nprobe=int(index.nprobe))
    index.add(x)
    return index, params


@dataclass
class RetrievalIndex:
    """Embeddings of store rows + a faiss index over them + provenance (``info``)."""

    emb: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    object_ids: np.ndarray
    view_ids: np.ndarray
    info: Dict = field(default_factory=dict)
    index: object = None
    post: Postprocess = field(default_factory=lambda: Postprocess("l2"))
    _model: object = None  # the index's encoder, loaded on the first search by weights
    _checked_store: object = None  # (path, store) once a query checked the store against this index

    def __len__(self) -> int:
        return int(self.emb.shape[0])

    @classmethod
    def build(cls, emb, rows, labels, object_ids, view_ids, info: Optional[Dict] = None, kind: str = "flat",
              post: str = DEFAULT_POST, **params):
        """Build from raw embeddings: ``post`` (:data:`~ssl_ws.retrieve.retrieval.POSTPROCESS`) fitted on
        them, ``params`` to :func:`build_faiss_index`."""
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        arrays = [np.asarray(a, dtype=np.int64) for a in (rows, labels, object_ids, view_ids)]
        if any(a.shape != (emb.shape[0],) for a in arrays):
            raise SslWsError("rows, labels, object_ids and view_ids must have one entry per embedding")
        if emb.shape[0] == 0:
            raise SslWsError("cannot index zero embeddings")
        pp = post if isinstance(post, Postprocess) else postprocess(emb, post)
        x = pp(emb)
        index, built = build_faiss_index(x, kind, **params)
        info = dict(info or {})
        info.update(index=built, n=int(emb.shape[0]), dim=int(emb.shape[1]),
                    post={"mode": pp.mode, "median_cosine_raw": median_random_cosine(emb),
                          "median_cosine": median_random_cosine(x)})
        return cls(emb, *arrays, info=info, index=index, post=pp)

    def rebuild(self, kind: str = "flat", post: Optional[str] = None, **params) -> "RetrievalIndex":
        """The same embeddings in another kind of faiss index (and post-processing)."""
        return RetrievalIndex.build(
            self.emb, self.rows, self.labels, self.object_ids, self.view_ids, self.info, kind=kind,
            post=self.post if post is None else post, **params
        )

    # -------------------------------------------------------------- search
    def search(self, queries, k: int = 8) -> Tuple[np.ndarray, np.ndarray]:
        """Similarities and index positions ``[n_q, k']`` (``k' = min(k, n)``), best first.

        ``queries``: raw embeddings ``[n_q, D]`` (or ``[D]``) of the index's encoder, or a
        :class:`~ssl_ws.weights.WeightSpace` of INRs, embedded here with the index's encoder
        (identity-checked). The index's post-processing is applied to them."""
        from ..weights import WeightSpace

        if isinstance(queries, WeightSpace):
            queries = self.embed(queries)
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None]
        if queries.ndim != 2 or queries.shape[1] != self.emb.shape[1]:
            raise SslWsError(f"query embeddings have shape {tuple(queries.shape)}, the index holds {self.emb.shape[1]}-d ones")
        if k < 1:
            raise SslWsError(f"k must be positive, got {k}")
        k = min(int(k), len(self))
        sims, pos = self.index.search(l2_normalize(self.post(queries)), k)
        return sims, pos.astype(np.int64)

    def embed(self, ws, device=None) -> np.ndarray:
        """Raw embeddings of INRs by the index's encoder (the recorded checkpoint, identity-checked)."""
        from ..eval.embed import embed_weights
        if self._model is None:
            self._model = index_encoder(self)
        return embed_weights(self._model, ws, device=device)

    def search_filtered(self, query, k: int = 8, exclude_rows=(), exclude_objects=(), label: Optional[int] = None):
        """``(similarities [k'], positions [k'])`` of one query's ``k`` best items that are not
        excluded (store rows or objects) and, if given, of class ``label``. Searches deeper until
        ``k`` are found or the index is exhausted."""
        ex_rows = np.asarray(list(exclude_rows), dtype=np.int64)
        ex_obj = np.asarray(list(exclude_objects), dtype=np.int64)
        depth = min(len(self), int(k) + len(ex_rows) + 8 * (len(ex_obj) > 0))
        while True:
            sims, pos = self.search(query, depth if label is None else min(len(self), max(depth, 4 * int(k))))
            sims, pos = sims[0], pos[0]
            ok = pos >= 0
            p = np.where(ok, pos, 0)
            ok &= ~np.isin(self.rows[p], ex_rows) & ~np.isin(self.object_ids[p], ex_obj)
            if label is not None:
                ok &= self.labels[p] == int(label)
            if ok.sum() >= k or len(pos) >= len(self):
                keep = np.flatnonzero(ok)[: int(k)]
                return sims[keep], pos[keep]
            depth = min(len(self), 4 * max(len(pos), 1))

    def position_of_row(self, row: int) -> Optional[int]:
        """Index position of store row ``row``, or None when it is not indexed."""
        hits = np.flatnonzero(self.rows == int(row))
        return int(hits[0]) if hits.size else None

    def neighbours(self, query, k: int = 8, exclude_rows=(), exclude_objects=(), label: Optional[int] = None) -> List[Dict]:
        """The ``k`` nearest neighbours of one query (embedding or one INR), as dicts; see
        :meth:`search_filtered` for the exclusions and the class filter."""
        sims, pos = self.search_filtered(query, k, exclude_rows, exclude_objects, label)
        names = self.info.get("class_names") or []
        out = []
        for s, p in zip(sims, pos):
            if p < 0:  # approximate indexes may return fewer than k
                continue
            label = int(self.labels[p])
            out.append(
                {
                    "row": int(self.rows[p]),
                    "label": label,
                    "class_name": names[label] if 0 <= label < len(names) else str(label),
                    "object": int(self.object_ids[p]),
                    "view": int(self.view_ids[p]),
                    "similarity": float(s),
                }
            )
        return out

    # -------------------------------------------------------------- disk
    def save(self, out_dir: str, overwrite: bool = True) -> str:
        """Write the directory atomically (a temporary sibling renamed into place)."""
        faiss = _faiss()
        out_dir = os.path.abspath(out_dir)
        parent = os.path.dirname(out_dir)
        os.makedirs(parent, exist_ok=True)
        if os.path.exists(out_dir) and not os.path.exists(os.path.join(out_dir, "index.json")) and os.listdir(out_dir):
            raise SslWsError(f"{out_dir} exists and is not a retrieval index; choose another --out")
        if os.path.exists(out_dir) and not overwrite:
            raise SslWsError(f"{out_dir} exists; pass --overwrite to replace it")
        with atomic_directory(out_dir) as tmp:
            np.save(os.path.join(tmp, "embeddings.npy"), self.emb)
            for name in _ARRAYS:
                np.save(os.path.join(tmp, f"{name}.npy"), getattr(self, name))
            faiss.write_index(self.index, os.path.join(tmp, "index.faiss"))
            post = {k: v for k, v in (("mean", self.post.mean), ("proj", self.post.proj)) if v is not None}
            if post:
                np.savez(os.path.join(tmp, "post.npz"), **post)
            info = dict(self.info, format=FORMAT, version=VERSION)
            info["post"] = dict(info.get("post") or {}, mode=self.post.mode)
            info["files"] = {f: file_sha256(os.path.join(tmp, f)) for f in sorted(os.listdir(tmp))}
            with open(os.path.join(tmp, "index.json"), "w") as f:
                json.dump(info, f, indent=2, default=str)
        return out_dir

    @classmethod
    def load(cls, path: str) -> "RetrievalIndex":
        """Read an index directory, checking everything a query relies on: ``index.json`` a
        JSON object of this format; the arrays of the right dtype, shape and length, finite
        embeddings; ``index.faiss`` readable and of the embeddings' size (rebuilt from the
        embeddings when absent); every file present with the SHA-256 ``index.json`` recorded
        for it (a byte changed in place, which no shape check sees). Anything else is one
        :class:`SslWsError` line naming the file."""
        faiss = _faiss()
        meta_path = os.path.join(path, "index.json")
        if not os.path.isfile(meta_path):
            raise SslWsError(f"{path} is not a retrieval index (no index.json); build one with `ssl-ws index`")
        try:
            info = read_json(meta_path, limit=64 << 20)
        except SslWsError as exc:
            raise SslWsError(f"{exc}; rebuild it with `ssl-ws index`") from None
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise SslWsError(f"{path}/index.json is not an ssl_ws retrieval index")
        try:
            version = int(info.get("version", 0))
        except (TypeError, ValueError):
            version = None
        if version is None or version > VERSION:
            raise SslWsError(f"{path} was written by a newer ssl_ws (index version {info.get('version')!r}); upgrade ssl_ws")
        for key, kind in (("encoder", dict), ("store", dict), ("index", dict), ("class_names", list), ("image_size", list)):
            if key in info and info[key] is None:
                del info[key]
            elif key in info and not isinstance(info[key], kind):
                raise SslWsError(f"corrupt {meta_path}: {key!r} must be a JSON {'object' if kind is dict else 'list'}")
        for key, value in (("channels", info.get("channels")), ("store.rows", info.get("store", {}).get("rows"))):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise SslWsError(f"corrupt {meta_path}: {key} must be a non-negative integer, got {value!r}")
        emb = _load_array(path, "embeddings", np.float32, 2)
        arrays = [_load_array(path, name, np.int64, 1) for name in _ARRAYS]
        n = emb.shape[0]
        for name, a in zip(_ARRAYS, arrays):
            if a.shape[0] != n:
                raise SslWsError(f"corrupt {path}/{name}.npy: {a.shape[0]} entries for {n} embeddings")
        bad = ~np.isfinite(emb).all(axis=1)
        if bad.any():
            raise SslWsError(f"corrupt {path}/embeddings.npy: row {int(np.argmax(bad))} is not finite (NaN or Inf)")
        n_store = (info.get("store") or {}).get("rows")
        if n and (arrays[0].min() < 0 or (isinstance(n_store, int) and arrays[0].max() >= n_store)):
            j = int(np.argmax((arrays[0] < 0) | (arrays[0] >= (n_store if isinstance(n_store, int) else np.inf))))
            raise SslWsError(f"corrupt {path}/rows.npy: entry {j} is row {int(arrays[0][j])}, "
                             f"outside the store's rows 0..{n_store - 1 if isinstance(n_store, int) else '?'}")
        _verify_files(path, info)  # after the checks that name a row, before faiss reads its file
        faiss_path = os.path.join(path, "index.faiss")
        if os.path.exists(faiss_path):
            try:
                index = faiss.read_index(faiss_path)
            except (RuntimeError, OSError, MemoryError) as exc:
                first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
                first = first.split("Error: ")[-1].strip()  # faiss prefixes the C++ function and source line
                raise SslWsError(f"corrupt {faiss_path}: faiss cannot read it ({first[:200]}); delete it and "
                                 f"it is rebuilt from the embeddings") from None
            if index.ntotal != emb.shape[0] or index.d != emb.shape[1]:
                raise SslWsError(f"{faiss_path} does not match embeddings.npy; delete it and it is rebuilt from the embeddings")
            obj = cls(emb, *arrays, info=info, index=index, post=_load_post(path, info, emb.shape[1]))
        else:  # the raw embeddings are enough to rebuild it
            params = dict(info.get("index", {}))
            kind = params.pop("kind", "flat")
            try:
                obj = cls.build(emb, *arrays, info=info, kind=kind, post=_load_post(path, info, emb.shape[1]),
                                **_build_kwargs(params))
            except (TypeError, ValueError, RuntimeError) as exc:
                raise SslWsError(f"corrupt {meta_path}: cannot rebuild the index from its recorded parameters "
                                 f"{params} ({' '.join(str(exc).split())[:200]})") from None
        return obj


def index_encoder(index: RetrievalIndex, ckpt: Optional[str] = None):
    """The encoder of the index (``ckpt`` or the recorded path), identity-checked."""
    from ..models.export import load_encoder

    enc = index.info.get("encoder", {})
    want = enc.get("identity")
    path = ckpt or enc.get("path")
    if not path:
        raise SslWsError("the index does not record its encoder's path; pass the checkpoint with --ckpt")
    if ckpt is None and not os.path.exists(path):
        raise SslWsError(f"the index's encoder {path} no longer exists; pass the checkpoint it was built with (--ckpt)")
    model = load_encoder(path, map_location="cpu")
    if want and model.identity != want:
        src = "the checkpoint given" if ckpt else f"the file now at the index's encoder path {path}"
        raise SslWsError(
            f"encoder mismatch: the index was built by encoder {want}, but {src} is encoder {model.identity}; "
            "rebuild the index with `ssl-ws index` or use the encoder it was built with"
        )
    return model


def rows_digest(store, rows, chunk: int = 8192) -> str:
    """SHA-256 of what an index answers about: the parameters, labels, object and view ids of
    store ``rows``, in index order (read in chunks of rows: bounded memory)."""
    import hashlib

    rows = np.asarray(rows, dtype=np.int64)
    h = hashlib.sha256(rows.tobytes())
    for lo in range(0, len(rows), chunk):
        part = rows[lo : lo + chunk]
        h.update(np.ascontiguousarray(np.asarray(store.params[np.sort(part)])[np.argsort(np.argsort(part))],
                                      dtype=np.float32).tobytes())
    for arr in (store.labels, store.object_ids, store.view_ids):
        h.update(np.ascontiguousarray(np.asarray(arr)[rows], dtype=np.int64).tobytes())
    return h.hexdigest()


def check_index_store(index: "RetrievalIndex", store, path: str) -> None:
    """Refuse ``store`` when the rows the index holds are no longer what it indexed (``info.store.digest``;
    indexes written before digests existed are taken as they are)."""
    want = (index.info.get("store") or {}).get("digest")
    if want is None:
        return
    if int(store.params.shape[0]) <= int(index.rows.max(initial=-1)) or rows_digest(store, index.rows) != want:
        enc = (index.info.get("encoder") or {}).get("path") or "ENCODER"
        raise SslWsError(f"store {path} changed since the index was built (the rows it indexed differ); rebuild it: "
                         f"ssl-ws index {enc} {path} --out INDEX")


def file_sha256(path: str, block: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in blocks (bounded memory for a file of any size)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify_files(path: str, info: Dict) -> None:
    """Each file ``index.json`` lists (indexes of version >= 2) has the SHA-256 recorded when
    it was written; a missing ``index.faiss`` is fine (it is rebuilt), a missing array is
    reported by its loader."""
    files = info.get("files")
    if files is None:
        return
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise SslWsError(f"corrupt {path}/index.json: 'files' must map file names to SHA-256 digests")
    for name, digest in files.items():
        f = os.path.join(path, os.path.basename(str(name)))
        if not os.path.exists(f):
            continue
        try:
            got = file_sha256(f)
        except OSError as exc:
            raise SslWsError(f"cannot read {f}: {exc.strerror or exc}") from None
        if got != digest:
            fix = ("delete it and it is rebuilt from the embeddings" if name == "index.faiss"
                   else "rebuild the index with `ssl-ws index`")
            raise SslWsError(f"corrupt {f}: its content changed after `ssl-ws index` wrote it "
                             f"(SHA-256 differs from index.json's record); {fix}")


def _load_post(path: str, info: Dict, dim: int) -> Postprocess:
    """The index's post-processing: ``info["post"]["mode"]`` (indexes written before it existed:
    plain cosine, ``l2``) and its statistics from ``post.npz``, checked."""
    mode = (info.get("post") or {}).get("mode", "l2") if isinstance(info.get("post"), (dict, type(None))) else None
    if mode not in POSTPROCESS:
        raise SslWsError(f"corrupt {path}/index.json: unknown post-processing {mode!r}")
    if mode in ("none", "l2"):
        return Postprocess(mode)
    f = os.path.join(path, "post.npz")
    try:
        with np.load(f, allow_pickle=False) as z:
            mean = np.asarray(z["mean"], dtype=np.float64)
            proj = np.asarray(z["proj"], dtype=np.float64) if mode == "whiten" else None
    except FileNotFoundError:
        raise SslWsError(f"{path} is an incomplete retrieval index (post.npz is missing)") from None
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise SslWsError(f"corrupt {f}: {_numpy_read_error(f, exc)}") from None
    if mean.shape != (dim,) or (proj is not None and (proj.ndim != 2 or proj.shape[0] != dim)) \
            or not np.isfinite(mean).all() or (proj is not None and not np.isfinite(proj).all()):
        raise SslWsError(f"corrupt {f}: statistics do not match the {dim}-d embeddings")
    return Postprocess(mode, mean=mean, proj=proj)


def _load_array(path: str, name: str, dtype, ndim: int) -> np.ndarray:
    f = os.path.join(path, f"{name}.npy")
    try:
        a = np.load(f, allow_pickle=False)
    except FileNotFoundError:
        raise SslWsError(f"{path} is an incomplete retrieval index ({name}.npy is missing)") from None
    except (OSError, ValueError, EOFError) as exc:
        raise SslWsError(f"corrupt {f}: {_numpy_read_error(f, exc)}") from None
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.ndim != ndim:
        raise SslWsError(f"corrupt {f}: expected {np.dtype(dtype).name} with {ndim} dims, "
                         f"got {getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}")
    return a


def _numpy_read_error(path: str, exc: BaseException) -> str:
    """Why ``np.load`` failed, in words: numpy calls any file that is neither .npy nor .npz
    "pickled data" when pickles are refused, so the file's first bytes decide what to say."""
    from ..data.sources import numpy_file_kind

    try:
        foreign = os.path.getsize(path) > 0 and numpy_file_kind(path) is None
    except OSError:
        foreign = False
    return "not a NumPy .npy / .npz file" if foreign else " ".join(str(exc).split())


def _build_kwargs(params: Dict) -> Dict:
    """index.json's recorded parameters -> :func:`build_faiss_index` keyword arguments."""
    names = {"M": "hnsw_m", "efConstruction": "ef_construction", "efSearch": "ef_search", "nlist": "nlist", "nprobe": "nprobe"}
    return {names[k]: v for k, v in params.items() if k in names}


def index_store_split(model, store, *, ckpt_path: str, store_path: str, split: str = "all", max_views=None,
                      kind: str = "flat", post: str = DEFAULT_POST, batch_size: int = 256, device=None,
                      progress: bool = False, config: Optional[Dict] = None, **params) -> RetrievalIndex:
    """The retrieval index of ``store``'s ``split`` embedded by ``model``, with the record ``query`` and
    ``serve`` check against (encoder identity and path, store path, rows, spec and the digest of the
    indexed rows, classes, image size, the options in ``config``)."""
    import time

    from ..eval.embed import embed_split
    from ..eval.results import encoder_info, environment, store_info

    check_index_params(**params)
    t0 = time.perf_counter()
    emb = embed_split(model, store, split, batch_size=batch_size, device=device, progress=progress,
                      max_views=max_views)
    t1 = time.perf_counter()
    info = {"encoder": encoder_info(model, ckpt_path), "store": store_info(store, store_path), "split": split,
            "class_names": store.label_names,
            "image_size": list(store.image_size),
            "channels": int(store.channels), "config": dict(config or {}), "environment": environment()}
    info["store"]["digest"] = rows_digest(store, emb.rows)
    index = RetrievalIndex.build(emb.emb, emb.rows, emb.labels, np.asarray(store.object_ids)[emb.rows],
                                 np.asarray(store.view_ids)[emb.rows], info=info, kind=kind, post=post, **params)
    index.info["seconds"] = {"embed": round(t1 - t0, 3), "build": round(time.perf_counter() - t1, 3)}
    return index
