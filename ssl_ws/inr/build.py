"""Building an INR store by fitting an image source: plan, fit (resumable, on every core), write.

* :func:`plan_fit`: the object splits (stratified by label), this shard's objects, views per
  object (``views`` for training, ``eval_views`` for validation / test), every init key, the
  recipe (:data:`~ssl_ws.inr.fit.RECIPES`) and the fit's identity (``plan.config``, stored in
  ``OUT.partial`` so a resumed run can only continue the same fit);
* :func:`fit_store`: claims ``OUT.partial`` (one writer), fits in chunks
  (:func:`~ssl_ws.inr.chunked.fit_chunked`) and writes the store (``meta.json``: recipe, init
  scheme, failed and retried fits), byte-identical whatever the workers, chunks or interruptions;
* :func:`fit_source`: ``ssl-ws fit`` as a function (its options and messages, then both steps).

Rows are object-major. Init keys (:func:`init_keys`): ``independent`` -- view ``k`` of image ``i``
from ``inr_keys(seed, i, k)`` (the published data sets); ``shared`` -- view ``k`` of every image
from ``inr_keys(seed, 0, k)``, so one view's weights are comparable across images.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..devices import resolve_device
from ..errors import SslWsError
from ..weights import INRSpec
from .fit import INIT_SCHEMES, init_keys

@dataclass
class FitPlan:
    """What a fit will produce (see :func:`plan_fit`)."""

    spec: INRSpec
    fit_cfg: Dict  # recipe, init, optimizer, steps, lr, target PSNR, seed, init scheme: meta.json's "fit"
    splits: Dict[str, List[int]]
    selected: np.ndarray  # objects fitted (this shard's)
    obj_rows: np.ndarray  # object of every row
    view_rows: np.ndarray  # view of every row
    views: int
    eval_views: int
    sizes: Tuple[float, ...]
    shard: Optional[Tuple[int, int]]
    source_desc: Dict
    chunk: int
    config: Dict = field(default_factory=dict)  # the identity of the fit (OUT.partial/config.json)

    def __len__(self) -> int:
        return int(len(self.obj_rows))

    def keys(self) -> np.ndarray:
        return init_keys(self.fit_cfg["seed"], self.obj_rows, self.view_rows, self.fit_cfg["init_scheme"]).numpy()


def plan_fit(
    src,
    *,
    source_name: str,
    limit: Optional[int] = None,
    views: int = 1,
    eval_views: Optional[int] = None,
    recipe: str = "siren",
    steps: Optional[int] = None,
    lr: Optional[float] = None,
    target_psnr: Optional[float] = None,
    hidden: Sequence[int] = (32, 32),
    w0: float = 30.0,
    init: str = "independent",
    seed: int = 0,
    split: str = "0.8,0.1,0.1",
    shard: Optional[Tuple[int, int]] = None,
    chunk: int = 512,
) -> FitPlan:
    """Plan the fit of ``src`` (an :class:`~ssl_ws.data.sources.ImageSource`): see the module doc."""
    from ..data.store import make_splits, parse_split_sizes
    from .fit import RECIPES

    eval_views = views if eval_views is None else eval_views
    if views < 1 or eval_views < 1 or chunk < 1:
        raise SslWsError(f"views, eval views and chunk must be positive, got {views}, {eval_views} and {chunk}")
    if recipe not in RECIPES:
        raise SslWsError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    if init not in INIT_SCHEMES:
        raise SslWsError(f"unknown init scheme {init!r}; choose from {', '.join(INIT_SCHEMES)}")
    hidden = [int(h) for h in hidden]
    if not hidden or min(hidden) < 1:
        raise SslWsError("the INR needs at least one hidden layer of positive width")
    sizes = parse_split_sizes(split)
    spec = INRSpec((2, *hidden, src.channels), activation="sine", w0=w0, output_offset=0.5)
    rec = RECIPES[recipe]
    fit_cfg = {
        "recipe": rec.name,
        "init": {"siren": "first layer U(+-1/d_in)", "dwsnets": "first layer U(+-sqrt(6/d_in)/w0)"}[rec.first_layer]
        + "; other hidden layers U(+-sqrt(6/d_in)/w0); hidden biases 0; output layer U(+-1/sqrt(d_in))",
        "optimizer": "adam",
        "loss": "mse over pixels and channels",
        "steps": rec.steps if steps is None else int(steps),
        "lr": rec.lr if lr is None else float(lr),
        "target_psnr": rec.target_psnr if target_psnr is None else float(target_psnr),
        "betas": list(rec.betas),
        "eps": rec.eps,
        "seed": int(seed),
        "max_retries": 2,
        "init_scheme": init,
        "init_key": "inr_keys(seed, object_id, view_id)" if init == "independent" else "inr_keys(seed, 0, view_id)",
    }
    n_obj = len(src)
    splits = make_splits(np.arange(n_obj, dtype=np.int64), src.labels, sizes, seed=seed)
    selected = np.array(sorted(o for v in splits.values() for o in v), dtype=np.int64)
    if shard is not None:
        i, n = shard
        selected = selected[i * len(selected) // n : (i + 1) * len(selected) // n]
    n_views = np.where(np.isin(selected, splits["train"]), views, eval_views).astype(np.int64)
    obj_rows = np.repeat(selected, n_views)
    view_rows = np.arange(len(obj_rows), dtype=np.int64) - np.repeat(np.cumsum(n_views) - n_views, n_views)
    if len(obj_rows) == 0:
        raise SslWsError("nothing to fit: no objects selected (check --limit, --split and --shard)")
    source_desc = dict(src.description, source=source_name, limit=limit, num_images=n_obj)
    config = {
        "spec": spec.to_dict(), "fit": fit_cfg, "views": views, "eval_views": eval_views, "source": source_desc,
        "split_sizes": list(sizes), "shard": list(shard) if shard else None, "chunk": chunk,
    }
    return FitPlan(spec, fit_cfg, splits, selected, obj_rows, view_rows, views, eval_views, tuple(sizes), shard,
                   source_desc, chunk, config)


@dataclass
class FitReport:
    """What :func:`fit_store` did."""

    out: Path
    stopped: bool = False  # max_chunks reached: run again to resume
    new_chunks: int = 0
    inr_steps: int = 0  # Adam steps taken by this run
    seconds: float = 0.0
    workers: int = 1
    kept: int = 0
    failed: int = 0
    psnr: Optional[np.ndarray] = None
    mean_steps: float = 0.0
    split_counts: Dict[str, int] = field(default_factory=dict)


def fit_store(
    plan: FitPlan,
    src,
    out,
    *,
    device=None,
    workers: Optional[int] = None,
    overwrite: bool = False,
    progress: Optional[Callable[[Dict], None]] = None,
    max_chunks: Optional[int] = None,
) -> FitReport:
    """Fit ``plan`` on the images of ``src`` and write the store ``out`` (see the module doc).

    ``workers``: processes (None: :func:`~ssl_ws.inr.chunked.default_workers`); ``progress``:
    :func:`~ssl_ws.inr.chunked.fit_chunked`'s callback; ``max_chunks``: stop after that many
    new chunks (tests of resuming). A full disk is one :class:`SslWsError` line; finished
    chunks stay in ``OUT.partial`` for the next run.
    """
    from ..errors import user_os_errors
    from .partial import claim_partial

    out = Path(out)
    partial = Path(str(out) + ".partial")
    if out.exists() and not overwrite:
        raise SslWsError(f"output {out} already exists; pass --overwrite to replace it")
    device = resolve_device(device)
    hint = f"; finished chunks stay in {partial}: free space and run the same command again"
    with claim_partial(partial), user_os_errors(f"cannot write {out}", hint):
        if out.exists() and not overwrite:  # another fit finished it while we prepared
            raise SslWsError(f"output {out} already exists; pass --overwrite to replace it")
        return _fit_claimed(plan, src, out, partial, device, workers, overwrite, progress, max_chunks)


def _fit_claimed(plan, src, out, partial, device, workers, overwrite, progress, max_chunks) -> FitReport:
    """The fit proper, in the claimed ``partial`` directory: resume, fit, write the store."""
    from ..data.store import write_store
    from .chunked import FitJob, default_workers, fit_chunked
    from .partial import match_partial

    match_partial(partial, plan.config, overwrite, "fit")

    cfg = plan.fit_cfg
    job = FitJob(spec=plan.spec.to_dict(), recipe=cfg["recipe"], steps=cfg["steps"], lr=cfg["lr"],
                 target_psnr=cfg["target_psnr"], max_retries=cfg["max_retries"], device=str(device))
    if workers is None:
        workers = default_workers(device, len(plan), cfg["steps"], src.image_size[0] * src.image_size[1])
    t0 = time.perf_counter()
    fit = fit_chunked(job, src.images, plan.obj_rows, plan.keys(), partial, chunk=plan.chunk, workers=workers,
                      progress=progress, max_chunks=max_chunks)
    report = FitReport(out=out, stopped=fit.stopped, new_chunks=fit.new_chunks, inr_steps=fit.new_inr_steps,
                       workers=fit.workers)
    if fit.stopped:
        return report
    report.seconds = time.perf_counter() - t0
    cat = fit.results
    obj_rows, view_rows = plan.obj_rows, plan.view_rows
    failed = cat["failed"].astype(bool)
    keep = ~failed
    retried = cat["retries"] > 0
    meta = {
        "spec": plan.spec.to_dict(),
        "class_names": src.class_names,
        "image_size": list(src.image_size),
        "channels": src.channels,
        "num_views": plan.views,
        "eval_views": plan.eval_views,
        "source": plan.source_desc,
        "fit": cfg,
        "splits": {"sizes": list(plan.sizes), "seed": int(cfg["seed"]), "stratified_by": "label", "by": "object"},
        "shard": list(plan.shard) if plan.shard else None,
        "coordinates": "pixel (row r, col c) at (x, y) = (linspace(-1,1,W)[c], linspace(-1,1,H)[r]), row-major",
        "failed_fits": [[int(o), int(v)] for o, v in zip(obj_rows[failed], view_rows[failed])],
        "retried_fits": [[int(o), int(v), int(r)] for o, v, r in
                         zip(obj_rows[retried], view_rows[retried], cat["retries"][retried])],
        "mean_steps": float(cat["steps"][keep].mean()) if keep.any() else 0.0,
    }
    kept_objs = set(np.unique(obj_rows[keep]).tolist())
    shard_splits = {name: [o for o in ids if o in kept_objs] for name, ids in plan.splits.items()}
    write_store(
        out, params=cat["params"][keep], labels=src.labels[obj_rows[keep]], object_ids=obj_rows[keep],
        view_ids=view_rows[keep], psnr=cat["psnr"][keep], splits=shard_splits, meta=meta, overwrite=overwrite,
    )
    shutil.rmtree(partial, ignore_errors=True)
    report.kept, report.failed = int(keep.sum()), int(failed.sum())
    report.psnr = cat["psnr"][keep]
    report.mean_steps = meta["mean_steps"]
    report.split_counts = {k: len(v) for k, v in shard_splits.items()}
    return report


# ------------------------------------------------------------------ `ssl-ws fit` as a function
def parse_shard(text: Optional[str]) -> Optional[Tuple[int, int]]:
    """``"i/n"`` as ``(i, n)`` with ``0 <= i < n``; None: no shard."""
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SslWsError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise SslWsError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def parse_workers(text) -> Optional[int]:
    """A positive number of fitting processes; ``auto`` (or None): None, chosen by
    :func:`~ssl_ws.inr.chunked.default_workers`."""
    if text is None or str(text).strip().lower() == "auto":
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise SslWsError(f"--workers must be a positive integer or 'auto', got {text!r}")
    return n


def check_fit_numbers(*, steps=None, lr=None, target_psnr=None, w0: float = 30.0, limit=None, eval_views=None) -> None:
    """Refuse numbers that would fit nothing (0 steps) or run blind (a NaN target)."""
    import math

    if steps is not None and steps < 1:
        raise SslWsError(f"--steps must be at least 1, got {steps}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise SslWsError(f"--lr must be a positive number, got {lr}")
    if target_psnr is not None and not math.isfinite(target_psnr):
        raise SslWsError(f"--target-psnr must be a finite number of dB (e.g. 1000 to never stop early), "
                         f"got {target_psnr}")
    if not (math.isfinite(w0) and w0 > 0):
        raise SslWsError(f"--w0 must be a positive number, got {w0}")
    if limit is not None and limit < 1:
        raise SslWsError(f"--limit must be at least 1, got {limit}")
    if eval_views is not None and eval_views < 1:
        raise SslWsError(f"--eval-views must be positive, got {eval_views}")


def hidden_widths(layer_sizes: Optional[str] = None, hidden: int = 32, layers: int = 2) -> List[int]:
    """The INR's hidden widths: ``layer_sizes`` (``"32,32"``), else ``layers`` layers of ``hidden``."""
    if not layer_sizes:
        return [hidden] * layers
    try:
        return [int(x) for x in layer_sizes.split(",") if x.strip()]
    except ValueError:
        raise SslWsError(f"--layer-sizes must be comma-separated integers, got {layer_sizes!r}") from None


def psnr_summary(psnr, target) -> str:
    """One line: median, p10, p90, min and max PSNR, and the share of INRs at ``target`` dB or above."""
    psnr = np.asarray(psnr, dtype=np.float64)
    if psnr.size == 0:
        return "no INRs"
    q10, q50, q90 = np.percentile(psnr, [10, 50, 90])
    return (f"PSNR dB: median {q50:.2f}, p10 {q10:.2f}, p90 {q90:.2f}, min {psnr.min():.2f}, "
            f"max {psnr.max():.2f}; {100.0 * np.mean(psnr >= target - 1e-6):.1f}% >= {target:g} dB")


def fit_source(out, *, source: str = "digits", data_dir: Optional[str] = None, views: int = 1,
               eval_views: Optional[int] = None, limit: Optional[int] = None, recipe: str = "siren",
               steps: Optional[int] = None, lr: Optional[float] = None, target_psnr: Optional[float] = None,
               hidden: int = 32, layers: int = 2, layer_sizes: Optional[str] = None, w0: float = 30.0,
               init: str = "independent", seed: int = 0, split: str = "0.8,0.1,0.1", shard: Optional[str] = None,
               chunk: int = 512, device=None, workers="auto", overwrite: bool = False,
               max_chunks: Optional[int] = None, progress: bool = True) -> Tuple[FitPlan, FitReport]:
    """``ssl-ws fit``: the options are the command's (``--layer-sizes`` is ``layer_sizes``), refused with
    its messages; loads ``source``, plans (:func:`plan_fit`) and fits it into the store ``out``
    (:func:`fit_store`), with a header line and a progress bar on stderr when ``progress``."""
    import sys

    if Path(out).exists() and not overwrite:
        raise SslWsError(f"output {out} already exists; pass --overwrite to replace it")
    if views < 1 or chunk < 1:
        raise SslWsError("--views and --chunk must be positive")
    check_fit_numbers(steps=steps, lr=lr, target_psnr=target_psnr, w0=w0, limit=limit, eval_views=eval_views)
    shard, workers = parse_shard(shard), parse_workers(workers)
    hidden = hidden_widths(layer_sizes, hidden, layers)
    if not hidden or min(hidden) < 1:
        raise SslWsError("the INR needs at least one hidden layer of positive width")
    from ..data.sources import load_source

    src = load_source(source, data_dir=data_dir, limit=limit)
    plan = plan_fit(src, source_name=source, limit=limit, views=views, eval_views=eval_views, recipe=recipe,
                    steps=steps, lr=lr, target_psnr=target_psnr, hidden=hidden, w0=w0, init=init, seed=seed,
                    split=split, shard=shard, chunk=chunk)
    device = resolve_device(device)
    bar = None

    def show(ev):
        nonlocal bar
        if bar is None:  # first event: the plan is made
            from tqdm import tqdm

            views_desc = (f"{plan.views} views" if plan.eval_views == plan.views
                          else f"{plan.views} views, {plan.eval_views} for val/test")
            procs = f", {ev['workers']} worker processes" if ev["workers"] > 1 else ""
            saved = f", {ev['chunks_done']} saved" if ev["chunks_done"] else ""
            print(f"fitting {len(plan)} INRs ({len(plan.selected)} images, {views_desc}) of [{plan.spec.describe()}] "
                  f"to {source} {src.image_size[0]}x{src.image_size[1]}, recipe {plan.fit_cfg['recipe']}, "
                  f"{ev['chunks']} chunk(s){saved} on {device}{procs}", file=sys.stderr)
            bar = tqdm(total=len(plan), unit="INR", dynamic_ncols=True, file=sys.stderr)
        post = {"chunks": f"{ev['chunks_done']}/{ev['chunks']}"}
        if ev["psnr_median"] is not None:
            post["psnr"] = f"{ev['psnr_median']:.1f}"
        bar.set_postfix(post, refresh=not ev["inrs"])
        bar.update(ev["inrs"])

    try:
        report = fit_store(plan, src, out, device=device, workers=workers, overwrite=overwrite,
                           progress=show if progress else None, max_chunks=max_chunks)
    finally:
        if bar is not None:
            bar.close()
    return plan, report


# ------------------------------------------------------------------ merging shards
def _same_fit(meta):
    return {k: v for k, v in meta.items() if k not in ("shard", "failed_fits", "retried_fits", "num_rows", "mean_steps")}


def merge_shards(shards: Sequence[str], out: str, *, allow_missing: bool = False, overwrite: bool = False) -> int:
    """Join the stores written by ``fit --shard i/n`` into ``out`` (rows sorted by object and view, splits and
    failure records concatenated); every shard must come from the same fit, once. Returns the number of INRs."""
    from ..data.store import load_store, write_store

    if Path(out).exists() and not overwrite:
        raise SslWsError(f"output {out} already exists; pass --overwrite to replace it")
    seen_paths = {}
    for p in shards:
        key = Path(p).resolve()
        if key in seen_paths:
            raise SslWsError(f"store {p} is given twice (as {seen_paths[key]} and {p}); give each shard once")
        seen_paths[key] = p
    stores = [load_store(p) for p in shards]
    ref = _same_fit(stores[0].meta)
    seen = {}
    for s in stores:
        if _same_fit(s.meta) != ref:
            diff = sorted(k for k in set(ref) | set(_same_fit(s.meta)) if ref.get(k) != s.meta.get(k))
            raise SslWsError(f"{s.path} is not a shard of the same fit as {stores[0].path} (differs in {', '.join(diff)})")
        sh = s.meta.get("shard")
        if sh is not None:
            if tuple(sh) in seen:
                raise SslWsError(f"shard {sh[0]}/{sh[1]} given twice ({seen[tuple(sh)]} and {s.path})")
            seen[tuple(sh)] = s.path
    ns = {n for _, n in seen}
    if len(ns) > 1:
        raise SslWsError(f"shards of different counts: {sorted(ns)}")
    if ns and not allow_missing:
        n = ns.pop()
        missing = sorted(set(range(n)) - {i for i, _ in seen})
        if missing:
            raise SslWsError(f"shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing; pass --allow-missing to merge anyway")
    cat = {k: np.concatenate([np.asarray(getattr(s, k)) for s in stores])
           for k in ("params", "labels", "object_ids", "view_ids", "psnr")}
    order = np.lexsort((cat["view_ids"], cat["object_ids"]))
    cat = {k: v[order] for k, v in cat.items()}
    splits = {}
    for s in stores:
        for name, ids in s.splits.items():
            splits.setdefault(name, []).extend(ids.tolist())
    meta = dict(stores[0].meta)
    meta["shard"] = None
    meta["merged_from"] = len(stores)
    for key in ("failed_fits", "retried_fits"):
        meta[key] = sorted(x for s in stores for x in s.meta.get(key, []))
    meta["mean_steps"] = float(np.average([s.meta.get("mean_steps", 0.0) for s in stores], weights=[len(s) for s in stores]))
    write_store(out, splits=splits, meta=meta, overwrite=overwrite, **cat)
    return int(len(order))
