"""`ssl-ws train --config configs/supervised/digits.yaml [key=value ...] [--resume RUN]`"""

from __future__ import annotations

from .pretrain import _summary, load

KIND = "train"


def configure(parser) -> None:
    from .pretrain import configure as _configure

    _configure(parser, KIND)


def run(args) -> int:
    from ..train.runs import run_train

    cfg = load(args, KIND)
    res = run_train(cfg, resume=args.resume)
    _summary(res)
    return 0
