"""How good are nearest-network queries? Retrieval metrics for embeddings of INRs.

A query ``q`` (an INR of the query split) ranks every item of a bank (the train split, or the
query split) by similarity, itself left out. Relevance: ``object`` -- another fit (view) of the
same image (queries with none in the bank are left out and counted); ``class`` -- same label.
Per relation, over the queries with a relevant item (``r_q(i) = 1`` if rank ``i`` is relevant,
``R_q`` relevant items):

* ``recall@k``: fraction of queries with a relevant item in the top ``k`` (the Recall@K of deep
  metric learning, Song et al., CVPR 2016);
* ``precision@k`` = mean_q ``sum_{i<=k} r_q(i) / k``;
* ``mAP`` = mean_q ``(1 / R_q) sum_i r_q(i) precision@i`` over the whole ranking.

Similarity: dot product after :func:`postprocess`, fitted on the bank and applied to queries:
``none``, ``l2`` (cosine), ``center`` (subtract the bank mean, then L2), ``whiten`` (centre, PCA
whitening with eigenvalue floor ``eps * max``, then L2). Batched: ``[chunk, n_bank]``
similarities and one sort per chunk of queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ..errors import SslWsError

POSTPROCESS = ("none", "l2", "center", "whiten")
RELATIONS = ("object", "class")


@dataclass
class Postprocess:
    """``x -> normalize((x - mean) @ proj)`` fitted on a bank (see the module doc)."""

    mode: str
    mean: Optional[np.ndarray] = None  # [D]
    proj: Optional[np.ndarray] = None  # [D, D'] (whiten)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.mean is not None:
            x = x - self.mean
        if self.proj is not None:
            x = x @ self.proj
        if self.mode != "none":
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x.astype(np.float32)


def postprocess(bank: np.ndarray, mode: str = "center", eps: float = 1e-6) -> Postprocess:
    """Fit the post-processing ``mode`` (one of :data:`POSTPROCESS`) on the bank embeddings."""
    if mode not in POSTPROCESS:
        raise SslWsError(f"unknown post-processing {mode!r}; choose from {', '.join(POSTPROCESS)}")
    bank = np.asarray(bank, dtype=np.float64)
    if mode in ("none", "l2"):
        return Postprocess(mode)
    mean = bank.mean(0)
    if mode == "center":
        return Postprocess(mode, mean=mean)
    cov = np.cov(bank - mean, rowvar=False).reshape(bank.shape[1], bank.shape[1])
    vals, vecs = np.linalg.eigh(cov)
    keep = vals > eps * max(float(vals.max()), 1e-30)
    return Postprocess(mode, mean=mean, proj=vecs[:, keep] / np.sqrt(vals[keep]))


def median_random_cosine(x: np.ndarray, pairs: int = 10_000, seed: int = 0) -> float:
    """Median cosine similarity of random pairs of distinct rows: how spread the cloud is
    (~1: a narrow cone where every item looks alike; ~0: spread)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(x), pairs)
    j = (i + rng.integers(1, len(x), pairs)) % len(x)
    n = np.linalg.norm(x, axis=1).clip(1e-12)
    return float(np.median((x[i] * x[j]).sum(1) / (n[i] * n[j])))


def retrieval_metrics(
    queries: np.ndarray,
    bank: np.ndarray,
    *,
    query_rows: np.ndarray,
    bank_rows: np.ndarray,
    query_objects: np.ndarray,
    bank_objects: np.ndarray,
    query_labels: np.ndarray,
    bank_labels: np.ndarray,
    ks: Sequence[int] = (1, 5, 10),
    chunk: int = 1024,
    device=None,
) -> Dict[str, Dict[str, float]]:
    """recall@k, precision@k and mAP of every query against the bank, per relation.

    ``queries`` / ``bank``: post-processed embeddings ``[n_q, D]`` / ``[n_b, D]`` (similarity =
    dot product). ``*_rows``: store rows (a bank item with the query's own row is left out);
    ``*_objects`` / ``*_labels``: object ids and labels of each.

    Returns ``{relation: {"queries": n, "skipped": n_without_relevant, "recall@k": .., "precision@k": .., "mAP": ..}}``.
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise SslWsError(f"k must be positive integers, got {list(ks)}")
    q = torch.as_tensor(np.asarray(queries, dtype=np.float32), device=device)
    b = torch.as_tensor(np.asarray(bank, dtype=np.float32), device=device)
    if q.dim() != 2 or b.dim() != 2 or q.shape[1] != b.shape[1]:
        raise SslWsError(f"queries {tuple(q.shape)} and bank {tuple(b.shape)} must be [n, D] of one D")
    as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64), device=q.device)
    qr, br, qo, bo, ql, bl = map(as_t, (query_rows, bank_rows, query_objects, bank_objects, query_labels, bank_labels))
    sums = {rel: {"n": 0, "skipped": 0, "ap": 0.0, **{f"hit{k}": 0.0 for k in ks}, **{f"prec{k}": 0.0 for k in ks}}
            for rel in RELATIONS}
    for s in range(0, len(q), chunk):
        sl = slice(s, s + chunk)
        sim = q[sl] @ b.T  # [c, n_b]
        self_hit = qr[sl, None] == br[None, :]
        sim = sim.masked_fill(self_hit, float("-inf"))
        order = torch.argsort(sim, dim=1, descending=True)
        valid = ~torch.gather(self_hit, 1, order)  # the query itself sinks to the end; not an item
        for rel, (qa, ba) in {"object": (qo, bo), "class": (ql, bl)}.items():
            rel_sorted = (ba[order] == qa[sl, None]) & valid  # [c, n_b] relevance by rank
            n_rel = rel_sorted.sum(1)
            has = n_rel > 0
            acc = sums[rel]
            acc["n"] += int(has.sum())
            acc["skipped"] += int((~has).sum())
            if not bool(has.any()):
                continue
            r = rel_sorted[has].float()
            cum = r.cumsum(1)
            ranks = torch.arange(1, r.shape[1] + 1, device=r.device, dtype=r.dtype)
            acc["ap"] += float(((cum / ranks) * r).sum(1).div(n_rel[has].float()).sum())
            for k in ks:
                top = r[:, :k]
                acc[f"hit{k}"] += float((top.sum(1) > 0).float().sum())
                acc[f"prec{k}"] += float(top.sum(1).div(k).sum())
    out = {}
    for rel, acc in sums.items():
        n = acc["n"]
        res = {"queries": n, "skipped": acc["skipped"]}
        for k in ks:
            res[f"recall@{k}"] = acc[f"hit{k}"] / n if n else None
        for k in ks:
            res[f"precision@{k}"] = acc[f"prec{k}"] / n if n else None
        res["mAP"] = acc["ap"] / n if n else None
        out[rel] = res
    return out


# ---------------------------------------------------------------------------------- driver
FEATURES = ("encoder", "raw", "pixels", "random")


def _standardize(bank: np.ndarray, *others: np.ndarray):
    """Per-coordinate standardization fitted on the bank (the baselines' StandardScaler)."""
    mean, std = bank.mean(0), bank.std(0)
    std = np.where(std > 0, std, 1.0)
    return [(x - mean) / std for x in (bank, *others)]


def feature_matrix(kind: str, store, rows: np.ndarray, model=None, device=None, batch_size: int = 256,
                   seed: int = 0, progress: bool = False) -> np.ndarray:
    """``[len(rows), D]`` features of store rows: ``encoder`` (the model's embeddings), ``raw``
    (flat weights), ``pixels`` (the INR rendered on the store's grid, clipped to [0, 1]) or
    ``random`` (an encoder of the model's architecture at a random init, seeded, with the
    model's normalizer: what the encoder's training added)."""
    from ..eval.embed import embed_rows

    rows = np.asarray(rows, dtype=np.int64)
    if kind == "encoder":
        return embed_rows(model, store, rows, batch_size=batch_size, device=device, progress=progress,
                          desc="embed").emb
    if kind == "raw":
        return np.asarray(store.params[rows], dtype=np.float32)
    if kind == "pixels":
        from .gallery import render_rows

        return render_rows(store, rows, device=device).flatten(1).numpy()
    if kind == "random":
        return embed_rows(model.reinitialized(seed), store, rows, batch_size=batch_size, device=device, progress=progress,
                          desc="embed (random init)").emb
    raise SslWsError(f"unknown feature {kind!r}; choose from {', '.join(FEATURES)}")


def evaluate_retrieval(
    store,
    model=None,
    *,
    features: Sequence[str] = FEATURES,
    posts: Sequence[str] = ("center",),
    query_split: str = "test",
    bank_split: Optional[str] = None,
    ks: Sequence[int] = (1, 5, 10),
    max_views: Optional[int] = None,
    device=None,
    seed: int = 0,
    progress: bool = False,
) -> Dict:
    """Retrieval metrics of every ``features`` x ``posts`` combination (see the module doc).

    The queries are the rows of ``query_split`` (``max_views`` views per object; all by
    default), the bank the rows of ``bank_split`` (None: the query split itself, each query
    left out). Returns ``{"rows": [{"features", "post", "median_cosine", "object": {...},
    "class": {...}}, ...], "queries": n, "bank": n, ...}``.
    """
    from ..eval.embed import split_rows

    if model is None and any(f in ("encoder", "random") for f in features):
        raise SslWsError("the encoder and random features need an encoder checkpoint")
    q_rows = split_rows(store, query_split, max_views=max_views)
    b_rows = q_rows if bank_split is None else split_rows(store, bank_split, max_views=max_views)
    if len(q_rows) == 0 or len(b_rows) < 2:
        raise SslWsError(f"retrieval needs queries and a bank of at least 2 INRs; got {len(q_rows)} queries "
                         f"({query_split}) and {len(b_rows)} bank items ({bank_split or query_split})")
    obj, lab = np.asarray(store.object_ids), np.asarray(store.labels)
    results = []
    for kind in features:
        same = bank_split is None
        qf = feature_matrix(kind, store, q_rows, model, device=device, seed=seed, progress=progress)
        bf = qf if same else feature_matrix(kind, store, b_rows, model, device=device, seed=seed, progress=progress)
        if kind in ("raw", "pixels"):  # unstructured vectors: standardized per coordinate on the bank
            bf, qf = _standardize(bf, qf)
        for post in posts:
            pp = postprocess(bf, post)
            pb = pp(bf)
            pq = pb if same else pp(qf)
            m = retrieval_metrics(pq, pb, query_rows=q_rows, bank_rows=b_rows, query_objects=obj[q_rows],
                                  bank_objects=obj[b_rows], query_labels=lab[q_rows], bank_labels=lab[b_rows],
                                  ks=ks, device=device)
            results.append({"features": kind, "post": post, "dim": int(bf.shape[1]),
                            "median_cosine": median_random_cosine(pb, seed=seed), **m})
    return {"query_split": query_split, "bank_split": bank_split or f"{query_split} (query left out)",
            "queries": int(len(q_rows)), "bank": int(len(b_rows)), "max_views": max_views, "ks": list(ks),
            "rows": results}


def format_table(res: Dict) -> str:
    """The results as a markdown table: one line per features x post-processing."""
    ks = res["ks"]
    head = (["features", "post", "median cos"] + [f"object R@{k}" for k in ks] + ["object mAP"]
            + [f"class R@{k}" for k in ks] + [f"class P@{ks[-1]}", "class mAP"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    f = lambda v: "—" if v is None else f"{v:.3f}"
    for r in res["rows"]:
        o, c = r["object"], r["class"]
        cells = ([r["features"], r["post"], f(r["median_cosine"])] + [f(o[f"recall@{k}"]) for k in ks] + [f(o["mAP"])]
                 + [f(c[f"recall@{k}"]) for k in ks] + [f(c[f"precision@{ks[-1]}"]), f(c["mAP"])])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def retrieval_picture(store, model, path: str, *, post: str = "center", query_split: str = "test",
                      bank_split: Optional[str] = None, n_queries: int = 4, k: int = 6, max_views: Optional[int] = None,
                      seed: int = 0, device=None) -> Dict:
    """A picture a person would rather look at than read: for ``n_queries`` queries (drawn with
    ``seed`` among those with another fit of their image in the bank), the query's render, its
    top-``k`` answers (captions: class, row/view, similarity; green = another fit of the query's
    image, black = same class, red = another class) and, under the query, the rank at which its
    other fits appear. One row per query, stacked into one PNG at ``path``.

    Returns ``{"path", "queries": [{"row", "other_fit_ranks"}, ...]}``.
    """
    from PIL import Image

    from ..eval.embed import split_rows
    from .gallery import query_picture, render_rows

    q_rows = split_rows(store, query_split, max_views=max_views)
    b_rows = q_rows if bank_split is None else split_rows(store, bank_split, max_views=max_views)
    obj, lab = np.asarray(store.object_ids), np.asarray(store.labels)
    b_obj_sorted = np.sort(obj[b_rows])
    twin_count = (np.searchsorted(b_obj_sorted, obj[q_rows], side="right")
                  - np.searchsorted(b_obj_sorted, obj[q_rows], side="left")) - np.isin(q_rows, b_rows)
    candidates = q_rows[twin_count > 0]
    if len(candidates) == 0:
        raise SslWsError("no query has another fit of its image in the bank: the picture needs >= 2 fits per object")
    pick = np.sort(np.random.default_rng(seed).choice(candidates, min(n_queries, len(candidates)), replace=False))
    qf = feature_matrix("encoder", store, pick, model, device=device)
    bf = feature_matrix("encoder", store, b_rows, model, device=device)
    pp = postprocess(bf, post)
    sim = pp(qf) @ pp(bf).T
    sim[pick[:, None] == b_rows[None, :]] = -np.inf  # the query itself is not an answer
    names = store.class_names
    rows_out, canvases = [], []
    for i, r in enumerate(pick):
        order = np.argsort(-sim[i], kind="stable")
        order = order[np.isfinite(sim[i, order])]
        ranks = (np.flatnonzero(obj[b_rows[order]] == obj[r]) + 1).tolist()
        top = b_rows[order[:k]]
        imgs = render_rows(store, [int(r)] + top.tolist(), device=device)
        cls = lambda row: names[int(lab[row])] if int(lab[row]) < len(names) else str(int(lab[row]))
        caps = [[cls(t), f"row {int(t)} v{int(store.view_ids[t])}", f"sim {sim[i, order[j]]:.3f}"]
                for j, t in enumerate(top)]
        match = [True if obj[t] == obj[r] else (None if lab[t] == lab[r] else False) for t in top]
        rank_txt = "other fit: rank " + ", ".join(map(str, ranks[:3])) + ("…" if len(ranks) > 3 else "")
        canvases.append(query_picture(imgs[0], imgs[1:], [f"query {cls(r)}", f"row {int(r)}", rank_txt], caps,
                                      match=match))
        rows_out.append({"row": int(r), "other_fit_ranks": ranks})
    width = max(c.size[0] for c in canvases)
    sheet = Image.new("RGB", (width, sum(c.size[1] for c in canvases)), "white")
    y = 0
    for c in canvases:
        sheet.paste(c, (0, y))
        y += c.size[1]
    sheet.save(path)
    return {"path": path, "post": post, "queries": rows_out}
