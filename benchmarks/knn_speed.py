"""kNN classification and retrieval speed: faiss vs scikit-learn, and HNSW at scale.

Part 1 -- weighted kNN classification (the `ssl-ws knn` protocol: L2-normalized
embeddings, k nearest by cosine similarity, votes weighted by exp(sim / T)) of
Q queries against N D-dimensional embeddings:

* faiss: ``ssl_ws.eval.knn.knn_predict(backend="faiss")`` (IndexFlatIP + vectorized vote);
* scikit-learn: ``KNeighborsClassifier(algorithm="brute", n_neighbors=k, n_jobs=-1)`` on
  the same normalized vectors with ``weights=exp((1 - d^2 / 2) / T)`` -- for unit
  vectors ``d^2 = 2 - 2 sim``, so this is the same weighted vote of the same
  neighbours; ties go to the smallest class in both. Predictions are compared
  one by one and the mismatches counted.

* torch: ``knn_predict(backend="torch", device=--device)``, the exact search of ``ssl-ws knn``
  without faiss (and of the online evaluation during training), on a GPU with ``--device cuda``.

faiss is optional: without it (the GPU machine has none unless its wheel travels) the faiss
rows are left out and the torch backend is compared with scikit-learn alone.

An approximate variant is timed beside them: faiss ``IndexIVFFlat`` (k-means cells
trained on a subsample, ``nprobe`` cells scanned per query) with the same vote; its
prediction mismatches against scikit-learn are counted too.

Part 2 -- retrieval at scale: an HNSW index (``IndexHNSWFlat``, inner product) over
M embeddings: build time, single-query latency (median and p99 over many queries,
one query per call) and recall@10 against exact ``IndexFlatIP`` search, plus the
exact index's single-query latency for comparison.

The embeddings are synthetic but shaped like real ones: class clusters in a
low-dimensional latent space (``--latent`` dims) mapped linearly to D dims plus
isotropic noise, so neighbours are meaningful and the intrinsic dimension is low.

Run:  python benchmarks/knn_speed.py            (full: 100k x 128-d, 10k queries; 1M HNSW)
      python benchmarks/knn_speed.py --n-db 20000 --n-queries 2000 --hnsw-n 100000   (smoke)
      python benchmarks/knn_speed.py --device cuda --skip-hnsw                       (torch search on a GPU)
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

import numpy as np


def synthetic(n: int, dim: int, n_classes: int, latent: int, noise: float, seed: int):
    """Unit-free clustered embeddings ``[n, dim]`` float32 and labels ``[n]``."""
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((latent, dim)).astype(np.float32) / np.sqrt(latent)
    centers = rng.standard_normal((n_classes, latent)).astype(np.float32) * 1.5
    labels = rng.integers(0, n_classes, n)
    z = centers[labels] + rng.standard_normal((n, latent)).astype(np.float32)
    x = z @ proj + noise * rng.standard_normal((n, dim)).astype(np.float32)
    return x.astype(np.float32), labels.astype(np.int64)


def bench_knn(args, data_seed: int = 0):
    from sklearn.neighbors import KNeighborsClassifier

    from ssl_ws.eval.knn import knn_predict, l2_normalize

    from ssl_ws.eval.knn import have_faiss

    x, y = synthetic(args.n_db + args.n_queries, args.dim, args.classes, args.latent, args.noise, data_seed)
    xtr, ytr, xq, yq = x[: args.n_db], y[: args.n_db], x[args.n_db :], y[args.n_db :]
    k, t = args.k, args.temperature
    faiss_ok = have_faiss()

    import torch

    def torch_knn():
        out = knn_predict(xtr, ytr, xq, k=k, temperature=t, num_classes=args.classes, backend="torch", device=args.device)
        if torch.device(args.device).type == "cuda":
            torch.cuda.synchronize()
        return out

    torch_knn()  # warm-up: CUDA context, kernels
    t0 = time.perf_counter()
    pred_torch = torch_knn()
    t_torch = time.perf_counter() - t0

    if faiss_ok:
        t0 = time.perf_counter()
        pred_faiss = knn_predict(xtr, ytr, xq, k=k, temperature=t, num_classes=args.classes, backend="faiss")
        t_faiss = time.perf_counter() - t0

    t0 = time.perf_counter()
    ntr, nq = l2_normalize(xtr), l2_normalize(xq)
    clf = KNeighborsClassifier(
        n_neighbors=k, algorithm="brute", metric="euclidean", n_jobs=-1,
        weights=lambda d: np.exp((1.0 - d.astype(np.float64) ** 2 / 2.0) / t),
    )
    clf.fit(ntr, ytr)
    pred_sk = clf.predict(nq)
    t_sk = time.perf_counter() - t0
    mism_torch = int(np.sum(pred_torch != pred_sk))
    print(f"kNN classification, {args.n_queries} queries vs {args.n_db} x {args.dim}-d, k={k}, T={t}:")
    print(f"  torch on {args.device} (exact search + vote)  {t_torch:8.3f} s   top-1 {np.mean(pred_torch == yq):.4f}")
    print(f"  sklearn KNeighborsClassifier brute  {t_sk:8.3f} s   top-1 {np.mean(pred_sk == yq):.4f}")
    print(f"  torch: speed-up {t_sk / t_torch:.1f}x, prediction mismatches vs sklearn {mism_torch} / {args.n_queries}")
    res = {"torch_s": t_torch, "sklearn_s": t_sk, "mismatches_torch": mism_torch, "device": str(args.device)}
    if not faiss_ok:
        print("  faiss not installed: faiss rows skipped")
        return res

    # approximate: IVF (k-means cells trained on a subsample), then the same vote
    import faiss

    from ssl_ws.eval.knn import weighted_vote

    t0 = time.perf_counter()
    nlist = args.ivf_nlist
    quant = faiss.IndexFlatIP(args.dim)
    ivf = faiss.IndexIVFFlat(quant, args.dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.niter = args.ivf_niter
    sub = np.random.default_rng(0).choice(len(ntr), size=min(len(ntr), 64 * nlist), replace=False)
    ivf.train(ntr[sub])
    ivf.add(ntr)
    ivf.nprobe = args.ivf_nprobe
    sims, idx = ivf.search(nq, k)
    pred_ivf = weighted_vote(sims, idx, ytr, args.classes, t).argmax(axis=1)
    t_ivf = time.perf_counter() - t0

    mism = int(np.sum(pred_faiss != pred_sk))
    mism_ivf = int(np.sum(pred_ivf != pred_sk))
    print(f"  faiss (IndexFlatIP + vote)          {t_faiss:8.3f} s   top-1 {np.mean(pred_faiss == yq):.4f}")
    print(f"  faiss IVF nlist={nlist} nprobe={args.ivf_nprobe} (train+add+search) {t_ivf:8.3f} s   top-1 {np.mean(pred_ivf == yq):.4f}")
    print(f"  exact faiss: speed-up {t_sk / t_faiss:.1f}x, prediction mismatches vs sklearn {mism} / {args.n_queries}")
    print(f"  IVF faiss:   speed-up {t_sk / t_ivf:.1f}x, prediction mismatches vs sklearn {mism_ivf} / {args.n_queries}")
    return dict(res, faiss_s=t_faiss, ivf_s=t_ivf, mismatches=mism, mismatches_ivf=mism_ivf)


def bench_hnsw(args, data_seed: int = 1):
    """The user's path: ``RetrievalIndex.build(kind="hnsw", post=args.post)`` and ``index.search`` of
    raw query embeddings (the post-processing -- centring by default -- fitted on the database and
    applied to each query), against the exact flat index with the same post-processing."""
    import faiss

    from ssl_ws.retrieve.index import RetrievalIndex

    x, _ = synthetic(args.hnsw_n + args.hnsw_queries, args.dim, args.classes, args.latent, args.noise, data_seed)
    db, q = x[: args.hnsw_n], x[args.hnsw_n :]
    ids = np.arange(len(db))

    t0 = time.perf_counter()
    hnsw = RetrievalIndex.build(db, ids, ids, ids, ids, kind="hnsw", post=args.post, hnsw_m=args.hnsw_m,
                                ef_construction=args.ef_construction, ef_search=args.ef_search)
    t_build = time.perf_counter() - t0
    params = hnsw.info["index"]
    flat = RetrievalIndex.build(db, ids, ids, ids, ids, kind="flat", post=hnsw.post)

    t0 = time.perf_counter()
    _, exact = flat.search(q, 10)
    t_exact_batch = time.perf_counter() - t0

    lat_h = np.empty(args.hnsw_queries)
    found = np.empty((args.hnsw_queries, 10), np.int64)
    for i in range(args.hnsw_queries):
        s = time.perf_counter()
        found[i] = hnsw.search(q[i : i + 1], 10)[1][0]
        lat_h[i] = time.perf_counter() - s
    n_flat = min(args.hnsw_queries, 50)
    lat_f = np.empty(n_flat)
    for i in range(n_flat):
        s = time.perf_counter()
        flat.search(q[i : i + 1], 10)
        lat_f[i] = time.perf_counter() - s
    recall = float(np.mean([len(set(a) & set(b)) / 10.0 for a, b in zip(found, exact)]))
    per_million = faiss.serialize_index(hnsw.index).nbytes / len(db) * 1e6 / 2**30
    print(f"HNSW retrieval, {args.hnsw_n} x {args.dim}-d, M={params['M']}, efConstruction={params['efConstruction']}, "
          f"efSearch={params['efSearch']}, post-processing '{hnsw.post.mode}' (median cosine of random pairs "
          f"{hnsw.info['post']['median_cosine_raw']:.3f} raw -> {hnsw.info['post']['median_cosine']:.3f}):")
    print(f"  build {t_build:.1f} s; faiss index {per_million:.2f} GiB per 1M entries (+ the raw embeddings, "
          f"{args.dim * 4 / 2**30 * 1e6:.2f} GiB per 1M)")
    print(f"  one query: median {np.median(lat_h) * 1e3:.3f} ms, p99 {np.percentile(lat_h, 99) * 1e3:.3f} ms "
          f"({args.hnsw_queries} queries, one per call, post-processing included); recall@10 vs exact {recall:.4f}")
    print(f"  exact IndexFlatIP one query: median {np.median(lat_f) * 1e3:.2f} ms ({n_flat} queries); "
          f"batched exact {args.hnsw_queries} queries {t_exact_batch:.2f} s")
    return {"build_s": t_build, "median_ms": float(np.median(lat_h) * 1e3), "recall10": recall,
            "gib_per_million": per_million}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-db", type=int, default=100_000)
    p.add_argument("--n-queries", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--latent", type=int, default=16)
    p.add_argument("--noise", type=float, default=0.3)
    p.add_argument("-k", type=int, default=20)
    p.add_argument("--temperature", type=float, default=0.07)
    p.add_argument("--ivf-nlist", type=int, default=256)
    p.add_argument("--ivf-nprobe", type=int, default=8)
    p.add_argument("--ivf-niter", type=int, default=10)
    p.add_argument("--hnsw-n", type=int, default=1_000_000)
    p.add_argument("--hnsw-queries", type=int, default=1000)
    p.add_argument("--hnsw-m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=40)
    p.add_argument("--ef-search", type=int, default=64)
    p.add_argument("--skip-knn", action="store_true")
    p.add_argument("--skip-hnsw", action="store_true")
    p.add_argument("--post", default="center", choices=("center", "l2", "whiten", "none"),
                   help="post-processing of the retrieval index (default: center, the ssl-ws index default)")
    p.add_argument("--device", default="cpu", help="device of the torch backend's search: cpu (default), cuda, cuda:N")
    args = p.parse_args(argv)
    from ssl_ws.eval.knn import have_faiss

    print("command: python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__)] + (sys.argv[1:] if argv is None else argv)))
    if have_faiss():
        import faiss

        print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads, {os.cpu_count()} CPUs")
    else:
        print(f"faiss not installed ({os.cpu_count()} CPUs): torch backend and scikit-learn only")
    if not args.skip_knn:
        bench_knn(args)
    if not args.skip_hnsw and have_faiss():
        bench_hnsw(args)


if __name__ == "__main__":
    main()
