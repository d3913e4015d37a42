"""Running a training job: run directory, Trainer, checkpoints, resume, results.

A run lives in ``<output_dir>/<name>/<timestamp>/``::

    config.yaml          the fully resolved config (what `--resume` reads back)
    checkpoints/last.ckpt   latest state (every epoch, and every n steps if asked)
    checkpoints/best.ckpt   best online kNN accuracy (pretrain) / val accuracy (train)
    events.out.tfevents.*   TensorBoard: train/loss, lr, online/knn_acc, online/probe_acc ...
    results.json         final numbers + per-epoch history + the config

Lightning's Trainer does the loop, device placement (``accelerator: auto``), DDP
(``devices``/``num_nodes``/``strategy``), checkpointing and TensorBoard logging.
Resuming (``resume=<run dir or .ckpt>``) restores weights, optimizer, scheduler,
loop counters, the data sampler position and the normalizer, so an interrupted
run continues exactly where its last checkpoint was written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import inspect
import json
import os
import shutil
import sys
import warnings
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from ..atomic import atomic_write
from ..config import to_dict
from ..errors import SslWsError

# evaluation (and so the checkpoint's monitored metric) runs every eval.every_n_steps, not every epoch
warnings.filterwarnings("ignore", message=".*could not find the monitored key.*")

RUN_DIR_ENV = "SSL_WS_RUN_DIR"  # shared with DDP worker processes re-launched by Lightning


# --------------------------------------------------------------------------- helpers
def _rank() -> int:
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def new_run_dir(output_dir: str, name: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(output_dir, name, stamp)
    path, k = base, 1
    while os.path.exists(path):
        path = f"{base}-{k}"
        k += 1
    os.makedirs(path)
    return path


def resolve_resume(resume: str):
    """``(run_dir, ckpt_path)`` of a run directory or a checkpoint file."""
    if os.path.isdir(resume):
        ckpt = os.path.join(resume, "checkpoints", "last.ckpt")
        if not os.path.exists(ckpt):
            raise SslWsError(f"cannot resume: {resume} has no checkpoints/last.ckpt (no checkpoint was written yet)")
        return resume, ckpt
    if not os.path.exists(resume):
        raise SslWsError(f"cannot resume: no such run directory or checkpoint: {resume}")
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(resume)))
    return run_dir, resume


def check_checkpoint(path: str, spec, encoder_config: Dict) -> None:
    """Fail early, in one line, when a checkpoint is unreadable or does not fit the data/encoder."""
    from ..models.export import load_payload
    from ..weights import INRSpec

    payload = load_payload(path)
    ck_spec = INRSpec.from_dict(payload["spec"])
    if ck_spec != spec:
        raise SslWsError(f"checkpoint {path} was trained on INRs [{ck_spec.describe()}] but the store holds [{spec.describe()}]")
    ck_enc = dict(payload.get("encoder_config", {}))
    want = {k: v for k, v in encoder_config.items()}
    if ck_enc.get("name") != want.get("name") or any(ck_enc.get(k) != v for k, v in want.items() if k in ck_enc):
        raise SslWsError(f"checkpoint {path} holds encoder {ck_enc} but the config asks for {want}")


def build_encoder_from_config(encoder_cfg: Dict, spec, image_size=None):
    """``build_encoder(name, spec, **kwargs)`` with one-line errors for bad names/kwargs.
    Encoders that render the INR (``takes_image_size``) get the store's ``image_size``
    unless the config sets one."""
    import difflib

    from ..models import build_encoder, list_encoders

    cfg = dict(encoder_cfg)
    name = cfg.pop("name")
    names = list(list_encoders()) if not isinstance(list_encoders(), dict) else list(list_encoders().keys())
    names = [n if isinstance(n, str) else getattr(n, "name", str(n)) for n in names]
    if names and name not in names:
        close = difflib.get_close_matches(str(name), names, n=1)
        raise SslWsError(f"unknown encoder {name!r}" + (f"; did you mean {close[0]!r}?" if close else f"; one of {names}"))
    from ..models.registry import ENCODERS

    if getattr(ENCODERS.get(name), "takes_image_size", False) and cfg.get("image_size") is None and image_size:
        cfg["image_size"] = [int(v) for v in image_size]
    try:
        return build_encoder(name, spec, **cfg)
    except TypeError as exc:
        msg = str(exc)
        bad = [k for k in cfg if f"'{k}'" in msg]
        if bad:
            raise SslWsError(f"unknown config key 'encoder.{bad[0]}' for encoder {name!r} ({msg.splitlines()[0]})") from None
        raise SslWsError(f"cannot build encoder {name!r} with {cfg}: {msg.splitlines()[0]}") from None


def has_two_fits(store, rows: np.ndarray) -> bool:
    """Whether every object among store ``rows`` has two fits or more there."""
    _, counts = np.unique(np.asarray(store.object_ids)[np.asarray(rows, dtype=np.int64)], return_counts=True)
    return bool(len(counts)) and int(counts.min()) >= 2


def resolve_positives(positives: str, store, train_rows: np.ndarray) -> str:
    """``ssl.positives=auto``: ``two_views`` when every training object has two fits or more
    (independent fits of one image are the natural positive pair), else ``same_fit``."""
    if positives != "auto":
        return positives
    chosen = "two_views" if has_two_fits(store, train_rows) else "same_fit"
    why = "every training object has >= 2 fits" if chosen == "two_views" else "some training objects have a single fit"
    if _rank() == 0:
        print(f"ssl.positives=auto: {chosen} ({why})", file=sys.stderr)
    return chosen


def use_refit_views(cfg):
    """``ssl.refit_views=K``: when some training object of ``data.store`` has a single fit and
    the positives may be two fits (``auto`` / ``two_views``), point ``cfg.data.store`` at the
    store refitted with ``K`` new views per training object (:func:`ssl_ws.inr.refit.cached_refit`,
    made once in ``ssl.refit_dir`` and reused). Evaluation reads view 0, the original fits.
    Returns the loaded store to train on (a bad store is refused here, before a run directory exists)."""
    from ..data import load_store
    from ..inr.refit import cached_refit

    store = load_store(cfg.data.store)
    k = int(cfg.ssl.refit_views)
    if k <= 0 or cfg.ssl.positives == "same_fit" or has_two_fits(store, training_rows(store, cfg)):
        return store
    if cfg.data.max_views is not None:
        raise SslWsError("ssl.refit_views adds views to the store, which data.max_views would cut again: "
                         "refit a one-fit store (`ssl-ws refit`) or set data.max_views=null")
    if store.spec.in_dim != 2 or len(store.image_size) != 2:
        if _rank() == 0:
            print(f"warning: ssl.refit_views={k} needs 2-D INRs and an image_size in {cfg.data.store}/meta.json "
                  f"to render them; training on the store as it is", file=sys.stderr)
        return store
    cache = cfg.ssl.refit_dir or os.path.join(cfg.output_dir, "refits")
    bar = None

    def progress(ev):
        nonlocal bar
        if bar is None and cfg.trainer.progress_bar and _rank() == 0:
            from tqdm import tqdm

            bar = tqdm(desc="refit", unit="INR", dynamic_ncols=True, file=sys.stderr)
        if bar is not None:
            bar.update(ev["inrs"])

    try:
        path = cached_refit(store, k, cache, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if _rank() == 0:
        print(f"ssl.refit_views={k}: training on {path} ({cfg.data.store} + {k} re-fitted view(s) of every "
              f"training object)", file=sys.stderr)
    cfg.data.store = str(path)
    return load_store(path)


def fit_normalizer(store, rows: np.ndarray, chunk: int = 4096, canonical: bool = False, enabled: bool = True):
    """Weight statistics over the raw (unaugmented) training rows, streamed; of their canonical
    forms (:mod:`ssl_ws.models.canonical`) for an encoder that embeds those. ``enabled=False``
    (``data.normalize=false``): the identity, raw weights."""
    from ..models.canonical import canonicalize
    from ..models.normalize import WeightNormalizer

    if not enabled:
        return WeightNormalizer.identity(store.spec)
    rows = np.asarray(rows, dtype=np.int64)
    prep = canonicalize if canonical else (lambda ws: ws)
    return WeightNormalizer.fit((prep(store.weights(rows[i : i + chunk])) for i in range(0, len(rows), chunk)), store.spec)


def warn_about_augmentation(cfg, normalizer, spec) -> Optional[str]:
    """Print (to stderr) and return a warning when the configured augmentation moves
    the weights far outside the training data (SIREN bias shifts on narrow biases)."""
    from ..augment.presets import preset
    from ..augment.transforms import bias_shift_warning

    if spec.activation != "sine":
        return None
    acfg = cfg["augment"] if isinstance(cfg, dict) else cfg.augment
    get = acfg.get if isinstance(acfg, dict) else (lambda key: getattr(acfg, key, None))
    names = [n for n in (get("preset"), get("preset2")) if n]
    b_std = [float(normalizer.b_std[i].max()) for i in range(spec.n_layers - 1)]
    for name in names:
        msg = bias_shift_warning(preset(name), b_std, spec.w0)
        if msg:
            print(f"warning: augment.preset={name}: {msg}", file=sys.stderr)
            return msg
    return None


def _skip_cuda_probe() -> None:
    """On a machine without a CUDA device, make torch's availability check cheap: every optimizer step asks
    ``torch.accelerator.is_available()``, which on a CUDA build without a GPU loads NVML through ctypes each
    time (cost: benchmarks/RESULTS.md, "Host time per training step"; cached only once CUDA initializes).
    An empty ``CUDA_VISIBLE_DEVICES`` answers it at once; a value the user set is left alone."""
    import torch

    if "CUDA_VISIBLE_DEVICES" not in os.environ and not torch.cuda.is_available():
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


def _is_terminal() -> bool:
    """Whether the progress bar would be seen redrawn (Lightning's bar writes to stdout)."""
    return sys.stdout.isatty()


def _trainer(cfg, run_dir: str, monitor: str, extra_callbacks: Sequence = ()):
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
    from pytorch_lightning.loggers import TensorBoardLogger

    from .checkpointing import AtomicCheckpointIO, RunCheckpoint

    t = cfg.trainer
    _skip_cuda_probe()
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    every = t.checkpoint_every_n_steps
    # one last.ckpt, written every `every` steps and at every epoch end by two callbacks (Lightning allows
    # one trigger per callback); without the version counter the second would write last-v1.ckpt
    # beside it and --resume (which reads last.ckpt) could miss up to an epoch
    one_last = {"enable_version_counter": False} if "enable_version_counter" in inspect.signature(
        ModelCheckpoint).parameters else {}
    last = RunCheckpoint(dirpath=ckpt_dir, save_top_k=0, save_last=True, every_n_train_steps=every or None,
                         save_on_train_epoch_end=True, **one_last)
    last_epoch = RunCheckpoint(dirpath=ckpt_dir, save_top_k=0, save_last=True, save_on_train_epoch_end=True,
                               **one_last) if every else None
    best = RunCheckpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode="max", save_top_k=1,
                         save_on_train_epoch_end=True, auto_insert_metric_name=False, **one_last)
    from .callbacks import DivergenceGuard, LineProgress

    # the guard first: it stops a diverged run before an evaluation or a checkpoint sees its weights
    callbacks = [DivergenceGuard(int(t.log_every_n_steps))]
    callbacks += [c for c in (last, last_epoch, best) if c is not None]
    callbacks.append(LearningRateMonitor(logging_interval="step"))
    callbacks.extend(extra_callbacks)
    bar = bool(t.progress_bar) and _is_terminal()
    if t.progress_bar and not bar:  # a log file: periodic status lines instead of bar redraws (after the
        callbacks.append(LineProgress())  # evaluation callbacks: it prints their records)
    logger = TensorBoardLogger(save_dir=run_dir, name="", version="", default_hp_metric=False)
    devices = t.devices
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    strategy = t.strategy
    return pl.Trainer(
        default_root_dir=run_dir,
        max_epochs=-1 if t.max_steps else int(t.max_epochs),
        max_steps=int(t.max_steps) if t.max_steps else -1,
        accelerator=t.accelerator,
        devices=devices,
        num_nodes=int(t.num_nodes),
        strategy=strategy,
        precision=t.precision,
        log_every_n_steps=int(t.log_every_n_steps),
        gradient_clip_val=t.gradient_clip_val,
        enable_progress_bar=bar,
        enable_model_summary=False,
        callbacks=callbacks,
        logger=logger,
        use_distributed_sampler=False,  # our batch sampler shards by rank itself
        num_sanity_val_steps=0,
        plugins=[AtomicCheckpointIO()],
    )


#: config keys a resumed run may change: how it is watched, logged and evaluated, not what it computes
RESUME_FREE = ("eval.", "trainer.progress_bar", "trainer.log_every_n_steps", "trainer.checkpoint_every_n_steps",
               "trainer.accelerator", "data.num_workers", "data.resident", "output_dir", "name", "ssl.refit_dir")


def check_resume_config(kind: str, run_dir: str, cfg) -> None:
    """Refuse a resume whose config changes the model, the data, the optimizer or the schedule
    (everything but :data:`RESUME_FREE`): a resumed run is the same run, continued."""
    from ..config import flat_items, load_config, to_dict

    saved_path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(saved_path):
        return
    saved, now = flat_items(to_dict(load_config(kind, saved_path))), flat_items(to_dict(cfg))
    changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k)
                     and not k.startswith(RESUME_FREE) and k not in RESUME_FREE)
    length = [k for k in changed if k in ("trainer.max_steps", "trainer.max_epochs")]
    if length and all(isinstance(saved.get(k), int) and isinstance(now.get(k), int) and now[k] < saved[k]
                      for k in length) and not (saved.get("trainer.max_steps") and "trainer.max_epochs" in length):
        # stopping earlier on the same schedule: the steps that run are the original run's, truncated
        changed = [k for k in changed if k not in length]
        length = []
    if length:
        k = length[0]
        raise SslWsError(f"--resume with {k}={now.get(k)} (the run was laid out for {saved.get(k)}): its learning-rate "
                         f"schedule spans the original length, so extra steps would run on an expired one; start a new "
                         f"run for the longer schedule, or fine-tune from {run_dir}/checkpoints/last.ckpt with "
                         f"`ssl-ws finetune`")
    if changed:
        shown = ", ".join(f"{k}={now.get(k)!r} (was {saved.get(k)!r})" for k in changed[:4])
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        raise SslWsError(f"--resume continues the same run, but these keys change it: {shown}{more}; start a new run "
                         f"instead (only eval.*, trainer.progress_bar / log_every_n_steps / checkpoint_every_n_steps / "
                         f"accelerator and data.num_workers may change on resume)")


_RUN_LOCKS: Dict[str, Optional[int]] = {}  # run dir -> the descriptor holding its lock


def lock_run(run_dir: str) -> None:
    """One writer per run directory: an exclusive ``flock`` on ``<run_dir>/.lock``, held until
    :func:`unlock_run` (or the process ends). Rank 0 only: DDP workers share their launcher's run."""
    from ..atomic import LockHeld, try_lock

    if _rank() != 0 or run_dir in _RUN_LOCKS:
        return
    try:
        _RUN_LOCKS[run_dir] = try_lock(os.path.join(run_dir, ".lock"))
    except LockHeld as held:
        raise SslWsError(f"run {run_dir} is being written by another process (pid {held.holder}); "
                         "wait for it to finish before resuming it") from None


def unlock_run(run_dir: str) -> None:
    fd = _RUN_LOCKS.pop(run_dir, None)
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


def releases_run_locks(fn):
    """Decorator of a run function: the run locks it took (in :func:`_prepare`) are released when it
    returns or raises."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        before = set(_RUN_LOCKS)
        try:
            return fn(*args, **kwargs)
        finally:
            for run_dir in set(_RUN_LOCKS) - before:
                unlock_run(run_dir)

    return wrapper


@dataclasses.dataclass
class Run:
    """What every run has before its parts are built: the typed config (typed once, here), its store,
    its directory (``fresh`` when this call created it) and the checkpoint it resumes from."""

    kind: str
    cfg: object
    store: object
    run_dir: str
    fresh: bool
    ckpt: Optional[str]


@dataclasses.dataclass
class Parts:
    """What a kind of run builds from its :class:`Run`: the module, its data, its evaluation callback,
    the metric the best checkpoint follows, and the kind's own entries of results.json."""

    module: object
    datamodule: object
    evaluation: object
    monitor: str
    results: Callable[[], Dict]
    extra_callbacks: Sequence = ()


def _prepare(kind: str, cfg, resume: Optional[str], store=None) -> Run:
    """Load the store (unless given, loaded), decide and lock the run directory, write its config.yaml."""
    from ..config import to_typed, to_yaml
    from ..data import load_store

    ckpt = None
    if store is None:
        store = load_store(cfg.data.store)  # a bad store is refused before a run directory exists
    fresh = False
    if resume:
        run_dir, ckpt = resolve_resume(resume)
        check_resume_config(kind, run_dir, cfg)
    elif os.environ.get(RUN_DIR_ENV) and _rank() != 0:
        run_dir = os.environ[RUN_DIR_ENV]
    else:
        run_dir = os.environ.get(RUN_DIR_ENV) if _rank() != 0 else None
        fresh = run_dir is None
        run_dir = run_dir or new_run_dir(cfg.output_dir, cfg.name)
    os.makedirs(run_dir, exist_ok=True)
    lock_run(run_dir)  # before anything in the run directory is written
    try:
        if _rank() == 0:
            with atomic_write(os.path.join(run_dir, "config.yaml")) as f:
                f.write(to_yaml(cfg))
        typed = to_typed(cfg)
    except BaseException:
        unlock_run(run_dir)
        raise
    return Run(kind, typed, store, run_dir, fresh, ckpt)


def _run(kind: str, cfg, resume: Optional[str], callbacks: Sequence, assemble: Callable[[Run], Parts],
         store=None) -> Dict:
    """The one body of every run: prepare, assemble the kind's parts, train, write results.json."""
    import pytorch_lightning as pl

    run = _prepare(kind, cfg, resume, store)
    with _refused_before_start(run.run_dir, run.fresh):
        pl.seed_everything(int(run.cfg.seed), workers=True, verbose=False)
        parts = assemble(run)
        if run.ckpt is not None:  # once, against the encoder the run now has (a fine-tune's pretrained one)
            check_checkpoint(run.ckpt, run.store.spec, run.cfg.encoder)
    parts.module.run_dir = run.run_dir
    trainer = _trainer(run.cfg, run.run_dir, parts.monitor, [parts.evaluation, *parts.extra_callbacks, *callbacks])
    _fit(trainer, parts.module, parts.datamodule, run.ckpt, run.run_dir, kind)
    results = {"kind": kind, "status": "completed", "run_dir": run.run_dir, "store": run.cfg.data.store,
               "epochs": int(trainer.current_epoch), "global_step": int(trainer.global_step),
               "history": parts.module.history, **parts.results(),
               "last_checkpoint": _ckpt_path(trainer, "last.ckpt"), "best_checkpoint": _ckpt_path(trainer, "best.ckpt"),
               "config": to_dict(run.cfg)}
    if trainer.is_global_zero:
        _write_results(run.run_dir, results)
    return results


def _write_results(run_dir: str, results: Dict) -> None:
    with atomic_write(os.path.join(run_dir, "results.json")) as f:
        json.dump(results, f, indent=2, default=float)


def _fit(trainer, module, datamodule, ckpt, run_dir, kind: str):
    from .callbacks import TrainingDiverged

    os.environ[RUN_DIR_ENV] = run_dir  # DDP workers started by Lightning re-run this command: same run dir
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt, weights_only=True if ckpt else None)
    except TrainingDiverged as exc:  # no numbers from a diverged run: results.json says it failed
        if trainer.is_global_zero:
            _write_results(run_dir, {"kind": kind, "status": "failed", "error": str(exc), "run_dir": run_dir,
                                     "global_step": int(exc.step), "history": module.history})
        raise
    except BaseException as exc:  # Ctrl-C / SIGTERM: the command names the run that --resume continues
        exc.run_dir = run_dir
        raise
    finally:
        if _rank() == 0:
            os.environ.pop(RUN_DIR_ENV, None)


def _ckpt_path(trainer, name: str) -> Optional[str]:
    p = os.path.join(trainer.default_root_dir, "checkpoints", name)
    return p if os.path.exists(p) else None


def training_rows(store, cfg) -> np.ndarray:
    """The store rows a run trains on: views ``< data.max_views`` of the training objects, or of
    ``data.objects_per_class`` of them per class (a subset fixed by seed 0, so that the
    subsets of a learning curve are nested and identical across training seeds)."""
    return store.select("train", max_views=cfg.data.max_views, per_class=cfg.data.objects_per_class, seed=0)


# --------------------------------------------------------------------------- pretrain
@releases_run_locks
def run_pretrain(cfg, resume: Optional[str] = None, callbacks: Sequence = ()) -> Dict:
    """Self-supervised pretraining (``ssl-ws pretrain``) with the objective ``ssl.objective``
    (SimCLR by default; :mod:`ssl_ws.train.objectives`). ``cfg``: from :func:`ssl_ws.config.load_config`.

    Returns the results dict also written to ``<run dir>/results.json``.
    """
    from .objectives import objective_class
    from .two_views import check_options

    objective = objective_class(cfg.ssl.objective)  # an unknown name or option fails before a run directory exists
    check_options(objective, cfg.ssl.options, cfg.ssl.objective)
    # a resumed run's config.yaml already names the refitted store
    store = None if resume else use_refit_views(cfg)
    return _run("pretrain", cfg, resume, callbacks, lambda run: _pretrain_parts(run, objective), store)


def _pretrain_parts(run: Run, objective) -> Parts:
    from .callbacks import DUMP_ENV, FirstStepDump, OnlineEvaluation
    from .datamodule import INRDataModule
    from .two_views import train_unit

    cfg, store = run.cfg, run.store
    train_rows = training_rows(store, cfg)
    cfg.ssl.positives = resolve_positives(cfg.ssl.positives, store, train_rows)
    if cfg.ssl.positives == "same_fit" and cfg.augment.preset == "none" and cfg.augment.mixup == "none":
        raise SslWsError("ssl.positives=same_fit with augment.preset=none makes the two views of every pair "
                         "identical, so SimCLR has nothing to learn; choose an augmentation (augment.preset=weak) "
                         "or a store with two fits or more per object (positives=two_views)")
    if cfg.ssl.positives == "same_fit" and cfg.augment.mixup != "none" and cfg.augment.mixup_partner == "view":
        # config.py refuses an explicit same_fit; here 'auto' has just chosen it
        raise SslWsError("augment.mixup_partner=view mixes two fits of one object, but some training objects of "
                         "this store have one fit (ssl.positives=auto chose same_fit); use mixup_partner=batch or "
                         "self, or ssl.refit_views=1")
    encoder = build_encoder_from_config(cfg.encoder, store.spec, store.image_size)
    normalizer = fit_normalizer(store, train_rows, canonical=encoder.canonical, enabled=bool(cfg.data.normalize))
    warn_about_augmentation(cfg, normalizer, store.spec)
    dm = INRDataModule.from_config(store, train_rows, cfg, train_unit(cfg.ssl.positives),
                                   _eval_rows(store, cfg, bank_split="train"))
    module = objective(cfg, store.spec, encoder, normalizer)
    e = cfg.eval
    evaluation = OnlineEvaluation(e.every_n_steps, e.every_n_epochs, k=int(e.knn_k), temperature=float(e.knn_temperature),
                                  probe_max_train=int(e.probe_max_train), seed=int(cfg.seed))
    source_store = (store.meta.get("refit") or {}).get("source_store", cfg.data.store)  # the store refitted

    def results() -> Dict:
        out = {"source_store": source_store}
        if module.history:
            out["best"] = max(module.history, key=lambda r: r["knn_acc"])
            out["final"] = module.history[-1]
        return out

    extra = [FirstStepDump(os.environ[DUMP_ENV])] if os.environ.get(DUMP_ENV) else []
    return Parts(module, dm, evaluation, "online/knn_acc", results, extra)


# --------------------------------------------------------------------------- supervised
@releases_run_locks
def run_train(cfg, resume: Optional[str] = None, callbacks: Sequence = (), pretrained=None,
              train_rows: Optional[np.ndarray] = None, store=None) -> Dict:
    """Supervised training (``ssl-ws train``); with ``pretrained`` (an
    :class:`~ssl_ws.models.export.EmbeddingModel` or a path) it fine-tunes that encoder.
    ``train_rows`` restricts training to those rows of the train split (few-label runs); ``store``: the
    store of ``data.store`` when the caller has loaded it already."""
    return _run("train", cfg, resume, callbacks, lambda run: _train_parts(run, pretrained, train_rows), store)


def _train_parts(run: Run, pretrained, subset: Optional[np.ndarray]) -> Parts:
    from ..models.export import EmbeddingModel, load_encoder
    from .callbacks import SupervisedEvaluation
    from .datamodule import INRDataModule
    from .supervised import SupervisedModule

    cfg, store = run.cfg, run.store
    train_rows = training_rows(store, cfg)
    if subset is not None:
        train_rows = np.intersect1d(train_rows, np.asarray(subset, dtype=np.int64))
    pretrained = pretrained if pretrained is not None else cfg.supervised.pretrained
    if pretrained is not None:
        model = pretrained if isinstance(pretrained, EmbeddingModel) else load_encoder(pretrained)
        if model.spec != store.spec:
            raise SslWsError(
                f"pretrained encoder was trained on INRs [{model.spec.describe()}] but the store holds [{store.spec.describe()}]"
            )
        encoder, normalizer = model.encoder, model.normalizer
        cfg.encoder = dict(model.encoder_config)
    else:
        encoder = build_encoder_from_config(cfg.encoder, store.spec, store.image_size)
        normalizer = fit_normalizer(store, train_rows, canonical=encoder.canonical, enabled=bool(cfg.data.normalize))
    warn_about_augmentation(cfg, normalizer, store.spec)
    ev = int(cfg.data.eval_max_views)
    eval_rows = {"val": store.rows("val", max_views=ev), "test": store.rows("test", max_views=ev),
                 "train": _train_eval_rows(store, train_rows, ev, int(cfg.seed))}
    dm = INRDataModule.from_config(store, train_rows, cfg, "rows", eval_rows)
    module = SupervisedModule(cfg, store.spec, encoder, normalizer, store.num_classes,
                              feature_norm=pretrained is not None)
    evaluation = SupervisedEvaluation(cfg.eval.every_n_steps, cfg.eval.every_n_epochs)

    def results() -> Dict:
        best = module.best or {}
        return {"best_epoch": best.get("epoch"), "train_acc": best.get("train_acc"), "val_acc": best.get("val_acc"),
                "test_acc": best.get("test_acc")}

    return Parts(module, dm, evaluation, "val/acc", results)


#: at most this many training rows are scored each epoch for the clean train accuracy
TRAIN_ACC_ROWS = 5000


def _train_eval_rows(store, train_rows: np.ndarray, max_views: int, seed: int) -> np.ndarray:
    """Training rows (``max_views`` fits per object) on which the clean train accuracy is measured."""
    rows = np.intersect1d(store.rows("train", max_views=max_views), train_rows)
    if len(rows) > TRAIN_ACC_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, TRAIN_ACC_ROWS, replace=False))
    return rows


def _eval_rows(store, cfg, bank_split: str = "train") -> Dict[str, np.ndarray]:
    ev = int(cfg.data.eval_max_views)
    bank = store.rows(bank_split, max_views=ev)
    cap = cfg.eval.max_bank
    if cap is not None and len(bank) > int(cap):
        bank = np.sort(np.random.default_rng(int(cfg.seed)).choice(bank, int(cap), replace=False))
    return {"bank": bank, "val": store.rows("val", max_views=ev)}


@contextlib.contextmanager
def _refused_before_start(run_dir: Optional[str], fresh: bool):
    """The set-up between a run directory's creation and the first step: a run refused there
    (``SslWsError``: a batch larger than the data, an encoder for other INRs, identical SimCLR
    views ...) leaves no directory holding only its config.yaml."""
    try:
        yield
    except SslWsError:
        if fresh and run_dir and os.path.isdir(run_dir) and set(os.listdir(run_dir)) <= {"config.yaml", ".lock"}:
            shutil.rmtree(run_dir, ignore_errors=True)
            try:
                os.rmdir(os.path.dirname(run_dir))  # runs/NAME, when this was its only run
            except OSError:
                pass
        raise
