"""Chunked, resumable fitting of many INRs, in one process or in several.

The rows are cut into chunks of at most ``chunk`` rows, each saved when done as
``chunk_<lo>_<hi>.npz`` (rows ``lo .. hi-1``); :func:`fit_chunked` skips the rows of the chunks
it finds, so a killed fit resumes. With ``workers > 1`` the remaining rows are cut into
``workers`` contiguous slices, each fitted by a ``spawn``-ed process with one torch thread
(``OMP_NUM_THREADS=1`` etc. set before torch is imported); progress comes back through a queue
(one bar), a failing worker stops the fit with its one-line message, an interrupt stops every
worker (saved chunks stay). Each fit is bit-identical in any batch (:func:`~ssl_ws.inr.fit.fit_inrs`)
and its init depends only on its key, so the result does not depend on workers, chunk
boundaries or resumptions.
"""

from __future__ import annotations

import contextlib
import os
import queue as queue_mod
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..atomic import atomic_write
from ..errors import SslWsError

__all__ = ["FitJob", "ChunkedFit", "default_workers", "fit_chunked", "plan_chunks", "saved_chunks"]

RESULT_KEYS = ("params", "psnr", "steps", "retries", "failed")
_CHUNK_RE = re.compile(r"^chunk_(\d+)_(\d+)\.npz$")
_OLD_CHUNK_RE = re.compile(r"^chunk_(\d+)\.npz$")  # the older layout: chunk number k of size `chunk`
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class FitJob:
    """How to fit every INR of a chunked fit (picklable: it travels to the workers)."""

    spec: Dict  # INRSpec.to_dict()
    recipe: str
    steps: int
    lr: float
    target_psnr: float
    max_retries: int = 2
    device: str = "cpu"


@dataclass
class ChunkedFit:
    """What :func:`fit_chunked` returns.

    ``results``: ``{params, psnr, steps, retries, failed}`` over all rows in row order, or
    None when the fit stopped early (``max_chunks``); ``new_chunks`` / ``new_inr_steps``:
    chunks fitted and Adam steps taken by this run; ``workers``: processes used.
    """

    results: Optional[Dict[str, np.ndarray]]
    new_chunks: int = 0
    new_inr_steps: int = 0
    workers: int = 1
    stopped: bool = False
    chunks_total: int = 0
    ranges: List[Tuple[int, int]] = field(default_factory=list)


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


WORK_PER_WORKER = 10_000_000  # pixel-steps (INRs x max steps x pixels): a few seconds of one thread


def default_workers(device, n_rows: int, steps: int, pixels: int) -> int:
    """``--workers auto``: one process per available CPU core on a CPU, 1 on a GPU; but at most
    one per ``WORK_PER_WORKER`` pixel-steps of work (``n_rows * steps * pixels``, an upper bound
    as INRs stop early), since starting a process (importing torch) costs seconds."""
    if str(device).split(":")[0] != "cpu":
        return 1
    return max(1, min(available_cpus(), int(n_rows) * int(steps) * int(pixels) // WORK_PER_WORKER))


# ------------------------------------------------------------------ chunk files
def chunk_path(partial: Path, lo: int, hi: int) -> Path:
    return Path(partial) / f"chunk_{lo:09d}_{hi:09d}.npz"


def save_chunk(path: Path, **arrays) -> None:
    """Write a chunk atomically (a temporary file renamed into place)."""
    with atomic_write(path, "wb") as fh:
        np.savez(fh, **arrays)


def _load_chunk(path: Path, n: int) -> Optional[Dict[str, np.ndarray]]:
    try:
        with np.load(path) as z:
            res = {key: z[key] for key in RESULT_KEYS}
    except (OSError, ValueError, EOFError, KeyError):
        return None
    if any(len(v) != n for v in res.values()):
        return None
    return res


def saved_chunks(partial: Path, n_rows: int, chunk: int) -> Dict[Tuple[int, int], Dict[str, np.ndarray]]:
    """The readable, non-overlapping chunks saved in ``partial``: ``{(lo, hi): results}``.
    Unreadable ones (cut off mid-write) are deleted, to be fitted again."""
    found = []
    for p in Path(partial).glob("chunk_*.npz"):
        if not p.is_file():  # not a chunk (a directory of that name is left for the save to report)
            continue
        m, old = _CHUNK_RE.match(p.name), _OLD_CHUNK_RE.match(p.name)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
        elif old:
            lo = int(old.group(1)) * chunk
            hi = min(lo + chunk, n_rows)
        else:
            continue
        if 0 <= lo < hi <= n_rows:
            found.append((lo, hi, p))
    out, end = {}, 0
    for lo, hi, p in sorted(found):
        if lo < end:
            continue  # overlaps a chunk already taken
        res = _load_chunk(p, hi - lo)
        if res is None:
            p.unlink(missing_ok=True)
            continue
        out[(lo, hi)] = res
        end = hi
    return out


def plan_chunks(n_rows: int, chunk: int, workers: int, saved: Sequence[Tuple[int, int]] = ()) -> List[List[Tuple[int, int]]]:
    """Cut the rows not covered by ``saved`` into at most ``workers`` contiguous slices of
    nearly equal size, and each slice into chunks of at most ``chunk`` rows.

    Returns one list of ``(lo, hi)`` chunks per worker (no empty lists). With nothing saved
    and one worker, the chunks are ``[0, chunk), [chunk, 2 chunk), ...``.
    """
    gaps, pos = [], 0
    for lo, hi in sorted(saved):
        if lo > pos:
            gaps.append((pos, lo))
        pos = max(pos, hi)
    if pos < n_rows:
        gaps.append((pos, n_rows))
    todo = sum(hi - lo for lo, hi in gaps)
    workers = max(1, min(int(workers), todo))
    bounds = [w * todo // workers for w in range(workers + 1)]  # worker w: to-do rows bounds[w] .. bounds[w+1]
    plan: List[List[Tuple[int, int]]] = [[] for _ in range(workers)]
    seen = 0  # to-do rows before the current gap
    for glo, ghi in gaps:
        for w in range(workers):
            a = max(glo, glo + bounds[w] - seen)
            b = min(ghi, glo + bounds[w + 1] - seen)
            for lo in range(a, b, chunk):
                plan[w].append((lo, min(lo + chunk, b)))
        seen += ghi - glo
    return [p for p in plan if p]


# ------------------------------------------------------------------ fitting
def _fit_ranges(job: FitJob, images, index: np.ndarray, keys: np.ndarray, ranges, partial: Path,
                max_chunks: Optional[int], report: Callable) -> None:
    """Fit the chunks ``ranges`` in order and save each; ``index[j]`` / ``keys[j]``: the image
    (a row of ``images``) and init key of the j-th row of the concatenated ranges."""
    import torch

    from ..weights import INRSpec
    from .fit import fit_inrs

    spec = INRSpec.from_dict(job.spec)
    images = torch.as_tensor(images)
    off = new = 0
    for lo, hi in ranges:
        if max_chunks is not None and new >= max_chunks:
            report("stopped")
            return
        n = hi - lo
        sel = slice(off, off + n)
        off += n
        seen = [0]

        def progress(info, seen=seen):
            report("progress", info["finished"] - seen[0], info["psnr_median"])
            seen[0] = info["finished"]

        fr = fit_inrs(
            images[torch.from_numpy(np.ascontiguousarray(index[sel]))], spec, recipe=job.recipe, steps=job.steps,
            lr=job.lr, target_psnr=job.target_psnr, seeds=torch.from_numpy(np.ascontiguousarray(keys[sel])),
            device=job.device, max_retries=job.max_retries, progress=progress,
        )
        res = {
            "params": fr.ws.to_flat().detach().cpu().numpy().astype(np.float32),
            "psnr": fr.psnr.cpu().numpy().astype(np.float32),
            "steps": fr.steps.cpu().numpy().astype(np.int64),
            "retries": fr.retries.cpu().numpy().astype(np.int64),
            "failed": fr.failed.cpu().numpy(),
        }
        save_chunk(chunk_path(partial, lo, hi), **res)
        new += 1
        report("chunk", n - seen[0], lo, hi, int(res["steps"].sum()))


def _rows(ranges) -> np.ndarray:
    return np.concatenate([np.arange(lo, hi, dtype=np.int64) for lo, hi in ranges])


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    if isinstance(exc, SslWsError):
        return msg or type(exc).__name__
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _worker(wid, job, images, index, keys, ranges, partial, max_chunks, q, parent_pid):
    """Entry point of a worker process (spawned: a fresh interpreter)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers on Ctrl-C (already so, inherited)
    try:
        from ..allocator import retain_freed_memory

        retain_freed_memory()
        import torch

        torch.set_num_threads(1)

        def report(kind, *payload):
            if os.getppid() != parent_pid:  # the parent is gone (killed): stop, keep saved chunks
                raise SystemExit(1)
            q.put((kind, wid, *payload))

        _fit_ranges(job, images, index, keys, ranges, Path(partial), max_chunks, report)
        q.put(("done", wid))
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as one line
        q.put(("error", wid, _one_line(exc)))
        raise SystemExit(1)


@contextlib.contextmanager
def _worker_start_env():
    """For processes started inside: OMP/MKL/... = 1 (spawn copies this environment, so it
    holds before torch is imported there) and SIGINT ignored (inherited through exec; Python
    then installs no KeyboardInterrupt handler), so that a Ctrl-C reaches only this process,
    which stops the workers itself."""
    import threading

    old = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    in_main = threading.current_thread() is threading.main_thread()
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
    try:
        yield
    finally:
        if in_main:
            signal.signal(signal.SIGINT, signal.SIG_DFL if old_int is None else old_int)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_workers(job, images, index, keys, plan, partial, max_chunks, on_event) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = []
    n = len(plan)
    ok = False
    try:
        with _worker_start_env():
            for w, ranges in enumerate(plan):
                rows = _rows(ranges)
                objs, local = np.unique(index[rows], return_inverse=True)
                p = ctx.Process(
                    target=_worker, name=f"ssl-ws-fit-worker-{w}", daemon=True,
                    args=(w, job, np.ascontiguousarray(images[objs]), local.astype(np.int64), keys[rows], ranges,
                          str(partial), max_chunks, q, os.getpid()),
                )
                p.start()
                procs.append(p)
        finished, dead = set(), set()
        while len(finished) < n:
            try:
                msg = q.get(timeout=0.5)
            except queue_mod.Empty:
                for w, p in enumerate(procs):
                    if w in finished or p.exitcode is None:
                        continue
                    if w in dead:  # gone for a whole poll without a last word
                        code = p.exitcode
                        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
                        hint = " (out of memory?)" if code == -signal.SIGKILL else ""
                        raise SslWsError(f"fit worker {w + 1} of {n} died ({how}){hint}; finished chunks are "
                                         f"saved: run the same command again to resume")
                    dead.add(w)  # its last messages may still be in the pipe
                continue
            kind, w = msg[0], msg[1]
            if kind == "error":
                raise SslWsError(f"fit worker {w + 1} of {n} failed: {msg[2]}")
            if kind in ("done", "stopped"):
                finished.add(w)
            on_event(kind, *msg[2:])
        ok = True
    finally:  # on an error or an interrupt, stop every worker at once
        for p in procs:
            if not ok and p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
        q.close()
        q.cancel_join_thread()


def fit_chunked(
    job: FitJob,
    images: np.ndarray,
    index: np.ndarray,
    keys: np.ndarray,
    partial,
    *,
    chunk: int = 512,
    workers: int = 1,
    progress: Optional[Callable[[Dict], None]] = None,
    max_chunks: Optional[int] = None,
) -> ChunkedFit:
    """Fit row ``j`` = one INR of image ``images[index[j]]`` from init key ``keys[j]``, for every
    row, in chunks saved to the directory ``partial`` (which must exist); resumes from the
    chunks saved there.

    Args:
        images: ``[n_images, C, H, W]`` float32 in [0, 1].
        index, keys: int64 ``[n_rows]``.
        workers: processes (1: fit here, with this process's torch threads; >1: that many
            spawned processes of one thread each, on contiguous slices of the rows to fit).
        progress: called with ``{"inrs": newly finished INRs, "psnr_median": float or None,
            "chunks_done": int, "chunks": int, "workers": int}``, first once the plan is made
            (with the INRs of the saved chunks).
        max_chunks: stop after this many new chunks (per worker), for tests of resuming.
    """
    partial = Path(partial)
    index = np.asarray(index, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.int64)
    n_rows = len(index)
    if workers < 1 or chunk < 1:
        raise SslWsError(f"workers and chunk must be positive, got {workers} and {chunk}")
    results = saved_chunks(partial, n_rows, chunk)
    plan = plan_chunks(n_rows, chunk, workers, list(results))
    total = len(results) + sum(len(p) for p in plan)
    out = ChunkedFit(results=None, workers=max(1, len(plan)), chunks_total=total)
    state = {"done": len(results)}

    def emit(inrs, psnr=None):
        if progress is not None:
            progress({"inrs": int(inrs), "psnr_median": psnr, "chunks_done": state["done"], "chunks": total,
                      "workers": out.workers})

    emit(sum(hi - lo for lo, hi in results))

    def on_event(kind, *payload):
        if kind == "progress":
            emit(payload[0], payload[1])
        elif kind == "chunk":
            inrs, lo, hi, steps = payload
            state["done"] += 1
            out.new_chunks += 1
            out.new_inr_steps += steps
            emit(inrs)
        elif kind == "stopped":
            out.stopped = True

    if len(plan) == 1:
        rows = _rows(plan[0])
        _fit_ranges(job, images, index[rows], keys[rows], plan[0], partial, max_chunks, on_event)
    elif plan:
        _run_workers(job, images, index, keys, plan, partial, max_chunks, on_event)
    if out.stopped:
        return out
    results = saved_chunks(partial, n_rows, chunk)
    out.ranges = sorted(results)
    covered = sum(hi - lo for lo, hi in out.ranges)
    if covered != n_rows:
        raise SslWsError(f"{partial} holds chunks for {covered} of {n_rows} INRs after fitting; "
                         f"delete it and fit again")
    out.results = {k: np.concatenate([results[r][k] for r in out.ranges]) for k in RESULT_KEYS}
    return out
