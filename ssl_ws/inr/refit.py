"""Re-fitted views: turn a store with one fit per object into a multi-view store.

For each object of the chosen splits, the stored INR is rendered on the store's pixel grid and
``K`` new INRs are fitted to that rendering from fresh inits with the store's own recipe (spec,
init, optimizer, steps, lr, target PSNR). The result holds every original row unchanged plus
``K`` new rows per object with view ids ``v_max + 1 .. v_max + K`` (``v_max``: the object's
largest stored view id). Two fits from independent inits share the function and nothing of the
init: the ``ssl.positives=two_views`` positives of Shamsian et al., ICML 2024, made from the data.

Init keys: ``inr_keys(seed, object_id, view_id)`` with the store's fitting seed (or ``seed``) and
the new view ids, so no key of a stored fit is reused. The work is a resumable chunked fit in
``OUT.partial`` (:mod:`ssl_ws.inr.chunked`); the store written is byte-identical for any worker count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch

from ..errors import SslWsError
from .fit import RECIPES, inr_keys

REFIT_SPLITS = ("train",)


@dataclass
class RefitPlan:
    """What :func:`refit_store` will add: ``K`` new fits of each object in ``objects``."""

    objects: np.ndarray  # object ids refitted (sorted)
    source_rows: np.ndarray  # the stored row each object's targets are rendered from (its lowest view)
    obj_rows: np.ndarray  # object of every new row
    view_rows: np.ndarray  # view id of every new row
    fit_cfg: Dict  # recipe, steps, lr, target PSNR, seed
    config: Dict  # the identity of the refit (OUT.partial/config.json)

    def __len__(self) -> int:
        return int(len(self.obj_rows))


def refit_recipe(store, recipe: Optional[str] = None) -> Dict:
    """The fitting settings of ``store`` (``meta.json``'s ``fit``); an imported store records
    none, so it takes ``recipe`` (default ``dwsnets``, the published data sets' recipe)."""
    fit = store.meta.get("fit") or {}
    name = recipe or fit.get("recipe") or "dwsnets"
    if name not in RECIPES:
        raise SslWsError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    rec = RECIPES[name]
    same = fit.get("recipe") == name
    return {
        "recipe": name,
        "steps": int(fit["steps"]) if same and fit.get("steps") else rec.steps,
        "lr": float(fit["lr"]) if same and fit.get("lr") else rec.lr,
        "target_psnr": float(fit["target_psnr"]) if same and fit.get("target_psnr") is not None else rec.target_psnr,
        "max_retries": 2,
    }


def plan_refit(store, views: int, *, splits: Sequence[str] = REFIT_SPLITS, seed: Optional[int] = None,
               recipe: Optional[str] = None, chunk: int = 512) -> RefitPlan:
    """Plan ``views`` new fits of every object in ``splits`` of ``store`` (see the module doc)."""
    if int(views) < 1:
        raise SslWsError(f"--views must be at least 1, got {views}")
    if chunk < 1:
        raise SslWsError(f"chunk must be positive, got {chunk}")
    if store.spec.in_dim != 2:
        raise SslWsError(f"refit renders INRs on a pixel grid: it needs 2-D INRs, these take {store.spec.in_dim}")
    if len(store.image_size) != 2:
        raise SslWsError(f"{store.path}/meta.json has no 2-D image_size; cannot render its INRs to refit them")
    unknown = [s for s in splits if s not in store.splits]
    if unknown:
        raise SslWsError(f"unknown split {unknown[0]!r}; this store has {sorted(store.splits)}")
    objects = np.unique(np.concatenate([store.splits[s] for s in splits]).astype(np.int64))
    obj_ids, view_ids = np.asarray(store.object_ids), np.asarray(store.view_ids)
    # each object's lowest view is the target; its highest view id is where the new ids start
    order = np.lexsort((view_ids, obj_ids))
    starts = np.r_[True, obj_ids[order][1:] != obj_ids[order][:-1]]
    first, last = order[starts], order[np.r_[starts[1:], True]]
    present = np.isin(obj_ids[first], objects)
    first, vmax = first[present], view_ids[last[present]]
    objects = obj_ids[first]
    if len(objects) == 0:
        raise SslWsError(f"nothing to refit: the store has no rows in {', '.join(splits)}")
    k = int(views)
    obj_rows = np.repeat(objects, k)
    view_rows = (np.repeat(vmax, k) + np.tile(np.arange(1, k + 1, dtype=np.int64), len(objects)))
    fit = store.meta.get("fit") or {}
    fit_cfg = dict(refit_recipe(store, recipe), seed=int(fit.get("seed", 0) if seed is None else seed))
    config = {
        "source_store": str(Path(store.path).resolve()), "source_rows": int(len(store)),
        "spec": store.spec.to_dict(), "image_size": list(store.image_size), "views": k,
        "splits": list(splits), "fit": fit_cfg, "chunk": int(chunk),
    }
    return RefitPlan(objects, first.astype(np.int64), obj_rows, view_rows, fit_cfg, config)


def render_targets(store, rows: np.ndarray, device=None, chunk: int = 4096) -> np.ndarray:
    """The stored INRs of ``rows`` rendered on the store's pixel grid, clipped to [0, 1]:
    ``[len(rows), C, H, W]`` float32 (the images the refits are fitted to)."""
    from .render import render_image

    h, w = (int(v) for v in store.image_size)
    out = np.empty((len(rows), store.spec.out_dim, h, w), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, len(rows), chunk):
            ws = store.weights(rows[s : s + chunk], device=device)
            out[s : s + chunk] = render_image(ws, h, w).clamp(0.0, 1.0).cpu().numpy()
    return out


@dataclass
class RefitReport:
    """What :func:`refit_store` did."""

    out: Path
    stopped: bool = False
    added: int = 0
    failed: int = 0
    objects: int = 0
    inr_steps: int = 0
    seconds: float = 0.0
    workers: int = 1
    psnr: Optional[np.ndarray] = None
    target_psnr: float = 40.0


def refit_store(store, plan: RefitPlan, out, *, device=None, workers: Optional[int] = None, overwrite: bool = False,
                progress: Optional[Callable[[Dict], None]] = None, max_chunks: Optional[int] = None,
                record: Optional[Dict] = None) -> RefitReport:
    """Write ``out``: ``store`` plus the re-fitted views of ``plan`` (:func:`plan_refit`).

    ``progress`` / ``max_chunks`` / ``workers`` as in :func:`ssl_ws.inr.build.fit_store`; a
    killed refit resumes from ``OUT.partial`` when run again with the same arguments.
    ``record``: entries that replace those of ``meta.json``'s ``refit`` record.
    """
    import shutil

    from ..data.store import write_store
    from ..devices import resolve_device
    from ..errors import user_os_errors
    from .chunked import FitJob, default_workers, fit_chunked
    from .partial import claim_partial, match_partial

    out = Path(out)
    if out.exists() and not overwrite:
        raise SslWsError(f"output {out} already exists; pass --overwrite to replace it")
    if out.resolve() == Path(store.path).resolve():
        raise SslWsError("refit writes a new store: --out must differ from the input store")
    device = resolve_device(device)
    partial = Path(str(out) + ".partial")
    hint = f"; finished chunks stay in {partial}: free space and run the same command again"
    report = RefitReport(out=out, objects=len(plan.objects), target_psnr=plan.fit_cfg["target_psnr"])
    with claim_partial(partial), user_os_errors(f"cannot write {out}", hint):
        match_partial(partial, plan.config, overwrite, "refit")
        targets = render_targets(store, plan.source_rows, device=device)
        cfg = plan.fit_cfg
        job = FitJob(spec=store.spec.to_dict(), recipe=cfg["recipe"], steps=cfg["steps"], lr=cfg["lr"],
                     target_psnr=cfg["target_psnr"], max_retries=cfg["max_retries"], device=str(device))
        if workers is None:
            h, w = store.image_size
            workers = default_workers(device, len(plan), cfg["steps"], int(h) * int(w))
        index = np.searchsorted(plan.objects, plan.obj_rows)  # row j fits targets[index[j]]
        keys = inr_keys(cfg["seed"], plan.obj_rows, plan.view_rows).numpy()
        t0 = time.perf_counter()
        fit = fit_chunked(job, targets, index, keys, partial, chunk=plan.config["chunk"], workers=workers,
                          progress=progress, max_chunks=max_chunks)
        report.inr_steps, report.workers = fit.new_inr_steps, fit.workers
        if fit.stopped:
            report.stopped = True
            return report
        report.seconds = time.perf_counter() - t0
        new = fit.results
        keep = ~new["failed"].astype(bool)
        obj = np.concatenate([np.asarray(store.object_ids), plan.obj_rows[keep]])
        view = np.concatenate([np.asarray(store.view_ids), plan.view_rows[keep]])
        order = np.lexsort((view, obj))  # object-major, as every store
        params = np.concatenate([np.asarray(store.params), new["params"][keep]])[order]
        new_labels = np.asarray(store.labels)[plan.source_rows][index[keep]]  # each refit keeps its object's label
        labels = np.concatenate([np.asarray(store.labels), new_labels])[order]
        psnr = np.concatenate([np.asarray(store.psnr), new["psnr"][keep]])[order]
        meta = dict(store.meta)
        meta.pop("num_rows", None)
        meta["num_views"] = int(view.max()) + 1
        meta["refit"] = {
            **{k: v for k, v in plan.config.items() if k not in ("spec", "chunk")},
            "target": "each object's lowest stored view rendered on the store's pixel grid, clipped to [0, 1]",
            "init_key": "inr_keys(seed, object_id, view_id) for the new view ids",
            "new_rows": int(keep.sum()), "failed_fits": [[int(o), int(v)] for o, v in
                                                          zip(plan.obj_rows[~keep], plan.view_rows[~keep])],
            "mean_steps": float(new["steps"][keep].mean()) if keep.any() else 0.0,
            **(record or {}),
        }
        write_store(out, params=params, labels=labels, object_ids=obj[order], view_ids=view[order], psnr=psnr,
                    splits={k: v.tolist() for k, v in store.splits.items()}, meta=meta, overwrite=overwrite)
        shutil.rmtree(partial, ignore_errors=True)
    report.added, report.failed = int(keep.sum()), int((~keep).sum())
    report.psnr = new["psnr"][keep]
    return report


def refit_cache_path(store, views: int, cache_dir, *, seed: Optional[int] = None,
                     splits: Sequence[str] = REFIT_SPLITS) -> Path:
    """Where :func:`cached_refit` keeps the refit of ``store``: ``cache_dir/<name>-<key>-k<views>``,
    the key a digest of the store's location, ``meta.json``, ``splits.json`` and the size and
    modification time of every array file, with ``seed`` and ``splits`` -- a rewritten store
    gets a new entry, never a stale one."""
    import hashlib
    import json

    root = Path(store.path).resolve()
    h = hashlib.sha256(str(root).encode())
    for name in ("meta.json", "splits.json"):
        try:
            h.update((root / name).read_bytes())
        except OSError:
            pass
    for name in sorted(p.name for p in root.glob("*.npy")):
        st = (root / name).stat()
        h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(json.dumps({"seed": seed, "splits": list(splits)}).encode())
    return Path(cache_dir) / f"{root.name}-{h.hexdigest()[:12]}-k{int(views)}"


def cached_refit(store, views: int, cache_dir, *, seed: Optional[int] = None, device=None,
                 workers: Optional[int] = None, progress: Optional[Callable[[Dict], None]] = None) -> Path:
    """The path of ``store`` refitted with ``views`` new views per training object, made with
    :func:`refit_store` on first use and reused afterwards (:func:`refit_cache_path`). A cached
    refit with fewer views is extended by the views it lacks: view ``k`` of an object always
    starts from the key ``(seed, object, k)`` and every fit is independent of its batch, so the
    result is the store a refit from scratch would write."""
    from ..data.store import load_store

    def usable(path):
        try:
            return load_store(path) if path.exists() else None
        except SslWsError:  # a damaged cache entry: fit it again
            return None

    out = refit_cache_path(store, views, cache_dir, seed=seed)
    if usable(out) is not None:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    base, have = store, 0
    for k in range(int(views) - 1, 0, -1):
        cached = usable(refit_cache_path(store, k, cache_dir, seed=seed))
        if cached is not None:
            base, have = cached, k
            break
    record = {"source_store": str(Path(store.path).resolve()), "source_rows": int(len(store)), "views": int(views)}
    refit_store(base, plan_refit(base, int(views) - have, seed=seed), out, device=device, workers=workers,
                overwrite=True, progress=progress, record=record)
    return out
