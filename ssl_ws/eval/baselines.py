"""Baselines on the same INRs as every weight-space accuracy, trained on the train split.

``raw-lr``
    Multinomial logistic regression on the flat parameter vector ``theta`` (``store.params``,
    PyTorch order), standardized: ``p(y | theta) = softmax(W (theta - mu) / sigma + b)``. Blind
    to neuron permutations: near chance with independent inits, high with a shared init
    (``fit --init shared``); a weight-space model should beat it.
``pixels-lr``
    The same on the render ``x = clip(f_theta(grid), 0, 1)`` (store's pixel grid), flattened.
``pixels-cnn``
    :class:`~ssl_ws.models.pixels.ConvFeatures` + linear on the standardized renders, Adam (lr
    1e-3), cross-entropy, ``cnn_epochs`` epochs of batch 128, seeded by ``seed`` (bitwise
    reproducible on a CPU, cuDNN's deterministic kernels on CUDA), scored in eval mode.

Both regressions are :func:`~ssl_ws.eval.linear_probe.linear_probe` with a fixed, untuned ``C =
1.0`` (``sum_i -log p(y_i | x_i) + ||W||^2 / (2 C)``). Each reports ``train_acc`` (clean),
``val_acc``, ``test_acc``, ``seconds`` (rendering once, ``render_seconds``). Rows: ``train_views``
views per train object, ``eval_views`` per val / test object (None: all).
"""

from __future__ import annotations

import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import SslWsError
from ..models.pixels import store_image_size

METHODS: Tuple[str, ...] = ("raw-lr", "pixels-lr", "pixels-cnn")
PIXEL_METHODS = ("pixels-lr", "pixels-cnn")
LR_C = 1.0
LR_MAX_ITER = 1000
RENDER_BATCH = 1024
CNN_BATCH = 128
CNN_LR = 1e-3
EVAL_BATCH = 1024


def parse_methods(methods) -> Tuple[str, ...]:
    """``"raw-lr,pixels-lr"`` or a sequence of names -> a tuple of known names, in order, once each."""
    names = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods)]
    names = [m for m in names if m]
    if not names:
        raise SslWsError(f"no baseline method given; choose from {', '.join(METHODS)}")
    for m in names:
        if m not in METHODS:
            raise SslWsError(f"unknown baseline method {m!r}; choose from {', '.join(METHODS)}")
    return tuple(dict.fromkeys(names))


def _lr(train, val, test, seed: int) -> Dict:
    """The linear probe with the single C of a baseline; ``(x, y)`` pairs, ``val`` may be empty."""
    from .linear_probe import linear_probe

    has_val = len(val[1]) > 0
    res = linear_probe(train[0], train[1], val[0] if has_val else None, val[1] if has_val else None,
                       test[0], test[1], cs=(LR_C,), max_iter=LR_MAX_ITER, seed=seed)
    return {
        "train_acc": res["train_top1"],
        "val_acc": res["val_top1_best"],
        "test_acc": res["top1"],
        "features": int(train[0].shape[1]),
        "C": LR_C,
        "n_iter": res["n_iter"],
        "converged": res["converged"],
    }


class SmallCNN(nn.Module):
    """``conv3x3(C->32) -> ReLU -> conv3x3(32->64) -> ReLU -> maxpool 2 -> linear`` (same padding)."""

    def __init__(self, channels: int, height: int, width: int, num_classes: int):
        super().__init__()
        from ..models.pixels import ConvFeatures  # the conv stack of the `pixels-cnn` encoder

        self.features = ConvFeatures(channels)
        self.head = nn.Linear(self.features.out_channels * (height // 2) * (width // 2), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


@torch.inference_mode()
def _predict(model: nn.Module, x: torch.Tensor, device) -> np.ndarray:
    model.eval()
    preds = [model(x[s : s + EVAL_BATCH].to(device)).argmax(1).cpu() for s in range(0, len(x), EVAL_BATCH)]
    return torch.cat(preds).numpy() if preds else np.zeros(0, np.int64)


def _cnn(train, val, test, num_classes: int, epochs: int, seed: int, device, progress: bool) -> Dict:
    """Train :class:`SmallCNN` on ``(images [n, C, H, W], labels)`` and score it; see the module doc."""
    from tqdm.auto import tqdm

    xtr, ytr = train
    mean, std = float(xtr.mean()), float(xtr.std()) or 1.0
    norm = [(x - mean) / std for x in (xtr, val[0], test[0])]
    ytr_t = torch.from_numpy(ytr)
    _, c, h, w = xtr.shape
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
        torch.manual_seed(seed)
        model = SmallCNN(c, h, w, num_classes).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=CNN_LR)
        gen = torch.Generator().manual_seed(seed)
        model.train()
        with tqdm(range(epochs), desc="pixels-cnn", unit="epoch", disable=not progress, leave=False) as bar:
            for _ in bar:
                order = torch.randperm(len(xtr), generator=gen)
                total = torch.zeros((), device=device)
                for s in range(0, len(order), CNN_BATCH):
                    idx = order[s : s + CNN_BATCH]
                    xb, yb = norm[0][idx].to(device), ytr_t[idx].to(device)
                    loss = nn.functional.cross_entropy(model(xb), yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.detach() * len(idx)
                bar.set_postfix(loss=f"{float(total) / len(order):.4f}")
        mean_loss = float(total) / len(xtr)
    accs = [float(np.mean(_predict(model, x, device) == y)) if len(y) else None
            for x, y in zip(norm, (ytr, val[1], test[1]))]
    return {
        "train_acc": accs[0],
        "val_acc": accs[1],
        "test_acc": accs[2],
        "features": int(c * h * w),
        "epochs": int(epochs),
        "final_train_loss": mean_loss,
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }


def run_baselines(
    store,
    methods: Sequence[str] = METHODS,
    *,
    train_views: Optional[int] = None,
    eval_views: Optional[int] = 1,
    labels_per_class: Optional[int] = None,
    seed: int = 0,
    cnn_epochs: int = 20,
    device="auto",
    progress: bool = True,
) -> Dict:
    """Run the baselines of the module doc on ``store`` (an :class:`INRStore` or its path).

    Args:
        methods: names from :data:`METHODS` (or one comma-separated string).
        train_views: views per training object (None: all).
        eval_views: views per val / test object (None: all).
        labels_per_class: labelled training objects per class (None: all); the subset is
            :func:`~ssl_ws.eval.few_labels.sample_per_class` drawn with ``seed``, the same
            objects ``ssl-ws linear-probe / knn / finetune --labels-per-class N --seed S`` use.
        seed: seeds the labelled subset, the logistic regressions and the CNN (init and batch order).
        cnn_epochs: epochs of the CNN (Adam, batch 128).
        device: where INRs are rendered and the CNN trains (``"auto"``: cuda when available).

    Returns:
        ``{"store": path, "methods": {name: {"train_acc", "val_acc", "test_acc", "seconds",
        "n_train", "n_val", "n_test", "features", ...}}, "config": {...}, "chance_test_acc",
        "render_seconds"}``; ``val_acc`` is None when the val split is empty.
    """
    from ..data.store import INRStore, load_store
    from ..devices import resolve_device

    if not isinstance(store, INRStore):
        store = load_store(store)
    methods = parse_methods(methods)
    for name, v in (("train_views", train_views), ("eval_views", eval_views)):
        if v is not None and int(v) < 1:
            raise SslWsError(f"{name.replace('_', '-')} must be at least 1 (or all), got {v}")
    if int(cnn_epochs) < 1 and "pixels-cnn" in methods:
        raise SslWsError(f"cnn-epochs must be at least 1, got {cnn_epochs}")
    dev = resolve_device(device)

    all_labels = np.asarray(store.labels)
    train = store.select("train", max_views=train_views, per_class=labels_per_class, seed=seed)
    rows = {"train": train,
            "val": store.rows("val", max_views=eval_views) if "val" in store.splits else np.zeros(0, np.int64),
            "test": store.rows("test", max_views=eval_views)}
    labels = {k: all_labels[r].astype(np.int64) for k, r in rows.items()}
    if not len(rows["train"]) or not len(rows["test"]):
        raise SslWsError(f"{store.path}: the baselines need a non-empty train and test split "
                         f"(train {len(rows['train'])} rows, test {len(rows['test'])})")
    present = np.unique(labels["train"])
    if present.size < 2:
        raise SslWsError(f"{store.path}: the train split holds a single class ({int(present[0])}); "
                         "a classifier needs at least two")
    num_classes = max(store.num_classes, int(all_labels.max()) + 1)
    (h, w), size_from = store_image_size(store)
    config = {
        "methods": list(methods), "train_views": train_views, "eval_views": eval_views,
        "labels_per_class": labels_per_class, "seed": int(seed),
        "cnn_epochs": int(cnn_epochs), "device": str(dev), "lr_C": LR_C, "lr_max_iter": LR_MAX_ITER,
        "cnn_batch": CNN_BATCH, "cnn_lr": CNN_LR, "image_size": [h, w], "image_size_from": size_from,
    }
    sizes = {f"n_{k}": int(len(r)) for k, r in rows.items()}
    out: Dict = {"store": str(store.path), "methods": {}, "config": config,
                 "chance_test_acc": float(np.bincount(labels["test"]).max() / len(labels["test"])),
                 "render_seconds": None}

    def data(feats):
        return [(feats[k], labels[k]) for k in ("train", "val", "test")]

    if "raw-lr" in methods:
        t0 = time.perf_counter()
        raw = {k: np.ascontiguousarray(store.params[r], dtype=np.float32) for k, r in rows.items()}
        res = _lr(*data(raw), seed=seed)
        out["methods"]["raw-lr"] = {**res, "seconds": round(time.perf_counter() - t0, 3), **sizes}

    if any(m in methods for m in PIXEL_METHODS):
        if store.spec.in_dim != 2:
            raise SslWsError(f"pixel baselines need INRs of images (2 input coordinates); these take {store.spec.in_dim}")
        from ..models.pixels import render_rows

        t0 = time.perf_counter()
        imgs = {k: render_rows(store, r, device=dev, batch_size=RENDER_BATCH, size=(h, w), progress=progress,
                               desc=f"render {k}") for k, r in rows.items()}
        out["render_seconds"] = round(time.perf_counter() - t0, 3)
        if "pixels-lr" in methods:
            t0 = time.perf_counter()
            res = _lr(*data({k: v.flatten(1).numpy() for k, v in imgs.items()}), seed=seed)
            out["methods"]["pixels-lr"] = {**res, "seconds": round(time.perf_counter() - t0, 3), **sizes}
        if "pixels-cnn" in methods:
            t0 = time.perf_counter()
            res = _cnn(*data(imgs), num_classes=num_classes, epochs=int(cnn_epochs), seed=seed,
                       device=dev, progress=progress)
            out["methods"]["pixels-cnn"] = {**res, "seconds": round(time.perf_counter() - t0, 3), **sizes}
    out["methods"] = {m: out["methods"][m] for m in methods}
    return out


def _acc(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def format_table(res) -> str:
    """The printed summary of :func:`run_baselines`' result (``ssl-ws baselines``)."""
    cfg = res["config"]
    first = next(iter(res["methods"].values()))
    tv = "all" if cfg["train_views"] is None else cfg["train_views"]
    lpc = "" if cfg.get("labels_per_class") is None else f", {cfg['labels_per_class']} objects/class"
    ev = "all" if cfg["eval_views"] is None else cfg["eval_views"]
    lines = [f"baselines on {res['store']}: {first['n_train']} train INRs ({tv} views/object{lpc}), "
             f"{first['n_val']} val, {first['n_test']} test ({ev} view(s)/object)",
             f"{'method':<12}{'features':>9}{'train acc':>11}{'val acc':>9}{'test acc':>10}{'seconds':>9}"]
    for name, m in res["methods"].items():
        lines.append(f"{name:<12}{m['features']:>9}{_acc(m['train_acc']):>11}{_acc(m['val_acc']):>9}"
                     f"{_acc(m['test_acc']):>10}{m['seconds']:>9.1f}")
    notes = [f"chance (majority class of test) {res['chance_test_acc']:.3f}"]
    if res.get("render_seconds") is not None:
        h, w = cfg["image_size"]
        where = "" if cfg["image_size_from"] == "store" else " (the store records no image size: default grid)"
        notes.append(f"rendered on the {h}x{w} grid{where} in {res['render_seconds']:.1f} s")
    unconverged = [n for n, m in res["methods"].items() if m.get("converged") is False]
    if unconverged:
        notes.append(f"not converged in {cfg['lr_max_iter']} L-BFGS iterations: {', '.join(unconverged)}")
    return "\n".join(lines + ["; ".join(notes)])
