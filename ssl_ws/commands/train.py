"""`ssl-ws train --config configs/supervised/digits.yaml [key=value ...] [--resume RUN]`"""

from __future__ import annotations

from ._run_common import configure_run, load_run_config, print_run_summary

KIND = "train"


def configure(parser) -> None:
    configure_run(parser, KIND)


def run(args) -> int:
    from ..train.runs import run_train

    res = run_train(load_run_config(args, KIND), resume=args.resume)
    print_run_summary(res)
    return 0
