"""Arguments and loading shared by the evaluation commands (embed, linear-probe, knn,
finetune, index). Heavy imports happen inside the functions, not at import time."""

from __future__ import annotations

import argparse
import os
from typing import Dict, Optional

from ..errors import SslWsError


def add_model_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ckpt", metavar="CKPT", help="exported encoder.pt, or a pretrain/train checkpoint (.ckpt)")
    parser.add_argument("store", metavar="STORE", help="INR store directory")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:N (default: auto)")
    parser.add_argument("--batch-size", type=int, default=256, help="INRs embedded per batch (default: 256)")
    parser.add_argument("--max-views", type=int, default=None, help="use only views 0..N-1 of every object")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_few_labels(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--labels-per-class",
        default="all",
        metavar="N",
        help="labelled training objects per class (1, 10, 100, ... or all); all views of a chosen object are kept (default: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the labelled-subset draw (default: 0)")


def add_projector(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--projector", metavar="DIR", help="also write a TensorBoard projector export (with thumbnails) to DIR")
    parser.add_argument("--projector-max", type=int, default=10000, help="at most this many points in the projector (default: 10000)")


def load_model_and_store(args):
    """(EmbeddingModel, store, torch.device), checked to fit each other."""
    from ..data import load_store
    from ..devices import resolve_device
    from ..eval.embed import load_encoder_for

    if args.batch_size < 1:
        raise SslWsError(f"--batch-size must be positive, got {args.batch_size}")
    device = resolve_device(args.device)
    store = load_store(args.store)
    model = load_encoder_for(args.ckpt, store, device)
    return model, store, device


def results_path(args, name: str, per_class: Optional[int] = None) -> str:
    """``--out`` or ``<dir of CKPT>/<name>[_lpcN].json``."""
    if getattr(args, "out", None):
        return args.out
    suffix = f"_lpc{per_class}" if per_class else ""
    return os.path.join(os.path.dirname(os.path.abspath(args.ckpt)), f"{name}{suffix}.json")


def config_of(args) -> Dict:
    """Every option of the command (what produced the numbers)."""
    cfg = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    for key in ("ckpt", "store", "out", "projector", "png", "image", "index_dir"):
        v = cfg.get(key)
        if isinstance(v, str) and v:
            cfg[key] = os.path.abspath(v)
    return cfg
