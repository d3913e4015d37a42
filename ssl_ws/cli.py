"""The ``ssl-ws`` command line.

Each sub-command lives in its own module under :mod:`ssl_ws.commands` and exposes
``configure(parser)`` (add its arguments) and ``run(args)`` (do the work). Only the
module of the command being run is imported, so ``ssl-ws --help`` is instant.

Errors a user can cause are :class:`~ssl_ws.errors.SslWsError`: printed as one line
(``error: ...``), exit status 2. Ctrl-C exits with status 130 after the command has
kept what it finished (every long command saves as it goes).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional, Tuple

from .errors import SslWsError

# name -> (module under ssl_ws.commands, one-line help). Order is the order of `--help`.
COMMANDS = {
    "quickstart": ("quickstart", "the whole pipeline on the embedded digits: fit, pretrain, evaluate, index, query"),
    "fit": ("fit", "fit INRs (several views per image) to an image source and write an INR store"),
    "refit": ("refit", "add re-fitted views (fresh-init fits of each INR's rendering) to a one-fit store"),
    "merge": ("merge", "merge the shards written by `fit --shard i/n` into one store"),
    "import": ("import_", "import a published INR data set (DWSNets or multi-view layout) into a store"),
    "export-store": ("export_store", "export a store to a published layout (DWSNets: splits.json + one .pth per INR)"),
    "info": ("info", "summarize an INR store: splits, views, classes, architecture, PSNR"),
    "show-augment": ("show_augment", "write a PNG grid of INRs rendered before and after an augmentation"),
    "augmentations": ("augmentations", "list augmentation presets and transforms"),
    "encoders": ("encoders", "list the encoders and their parameter counts"),
    "pretrain": ("pretrain", "SimCLR pretraining of a weight-space encoder"),
    "train": ("train", "supervised training of a weight-space classifier"),
    "export": ("export", "write encoder-only weights from a training checkpoint"),
    "embed": ("embed", "write embeddings of a store split"),
    "linear-probe": ("linear_probe", "linear-probe accuracy of frozen embeddings"),
    "knn": ("knn", "weighted kNN accuracy of frozen embeddings (faiss)"),
    "baselines": ("baselines", "raw-weight and rendered-pixel baselines (logistic regression, small CNN) on a store"),
    "finetune": ("finetune", "fine-tune an encoder with a linear head"),
    "index": ("index", "build a faiss retrieval index of a store's embeddings"),
    "query": ("query", "query a retrieval index by INR id or by a new image"),
    "serve": ("serve", "serve a retrieval index over HTTP: JSON API, web page, OpenAPI docs (pip install .[serve])"),
    "retrieval-eval": ("retrieval_eval", "retrieval quality: recall@k / mAP for same object and same class, beside baselines"),
}


def _build_parser(selected: Optional[str]) -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="ssl-ws",
        description="Self-supervised learning on deep weight spaces: INRs as data.",
    )
    parser.add_argument("--version", action="version", version=f"ssl_ws {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        if name == selected:
            mod = importlib.import_module(f".commands.{module}", __package__)
            mod.configure(p)
            p.set_defaults(_run=mod.run)
    return parser


#: commands that keep their finished work when stopped and continue from it when run again
RESUMABLE = ("fit", "refit")
#: training commands: their run directory keeps the last checkpoint, and ``--resume RUN`` continues it
TRAINING = ("pretrain", "train")


def _after_stop(command: Optional[str], run_dir: Optional[str] = None) -> str:
    """What is left after a command stopped early, said truthfully for that command: ``fit``
    keeps its finished chunks and continues from them when run again; a training run keeps its
    checkpoints (``trainer.checkpoint_every_n_steps``, and at every evaluation) and continues with
    ``--resume``; every other command writes its outputs atomically, so it leaves nothing
    half-written (and nothing of this run)."""
    if command in RESUMABLE:
        return "finished work was saved; run the same command again to resume"
    if command in TRAINING:
        return (f"checkpoints written so far are kept; continue from the last one with "
                f"`ssl-ws {command} --resume {run_dir or 'RUN_DIR'}`")
    return "no half-written output was left; run the same command again"


def _stop_signal(exc: SystemExit) -> Optional[Tuple[str, int]]:
    """(message, exit status) when ``exc`` is how Lightning ends a run stopped by a signal, else None.

    Lightning turns Ctrl-C into ``SystemExit(1)`` (raised while handling the KeyboardInterrupt)
    and SIGTERM (a scheduler's preemption, ``kill``) into a ``SIGTERMException``, a SystemExit
    without a code, which would end the command with status 0 and no results. The command
    exits as the signal would have: 130 (SIGINT) or 143 (SIGTERM)."""
    if type(exc).__name__ == "SIGTERMException":
        return "terminated (SIGTERM)", 128 + 15
    if isinstance(exc.__context__, KeyboardInterrupt):
        return "interrupted", 130
    return None


def _user_write_error(exc: BaseException, command: Optional[str] = None) -> Optional[str]:
    """One line for a failure the user can fix that a command did not catch itself: a full disk,
    a quota, a read-only or forbidden place (``OSError``), or torch's own report of one while
    writing a checkpoint (``RuntimeError: ... file write failed`` / ``No space left``)."""
    from .errors import user_os_error_message

    reason = user_os_error_message(exc)
    if reason is not None:
        return f"{reason}; free space or fix permissions ({_after_stop(command)})"
    msg = " ".join(str(exc).split())
    if isinstance(exc, RuntimeError) and ("No space left" in msg or "file write failed" in msg):
        return f"writing a file failed ({msg[:160]}); the disk may be full: free space ({_after_stop(command)})"
    return None


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    if selected not in COMMANDS:
        selected = None
    parser = _build_parser(selected)
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may follow options (`finetune CKPT STORE --labels-per-class 10 trainer.max_steps=5`):
    # argparse stops filling a trailing nargs="*" positional once an option came between
    if extra and isinstance(getattr(args, "overrides", None), list) and all(
            "=" in e and not e.startswith("-") for e in extra):
        args.overrides = list(args.overrides) + extra
    elif extra:
        parser.parse_args(argv)  # argparse's own one-line error and exit status 2
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if not argv else 2
    from .allocator import retain_freed_memory

    retain_freed_memory()  # large tensors reused, not mmap'ed afresh each step (RESULTS.md, "Fitting on every core")
    if not sys.stderr.isatty():  # a log file (CI, Slurm, nohup): progress bars redraw at most every 30 s
        os.environ.setdefault("TQDM_MININTERVAL", "30")
    try:
        code = args._run(args)
    except SslWsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as exc:
        print(f"interrupted: {_after_stop(selected, getattr(exc, 'run_dir', None))}", file=sys.stderr)
        return 130
    except SystemExit as exc:
        stopped = _stop_signal(exc)
        if stopped is None:
            raise
        print(f"{stopped[0]}: {_after_stop(selected, getattr(exc, 'run_dir', None))}", file=sys.stderr)
        return stopped[1]
    except (OSError, RuntimeError) as exc:
        line = _user_write_error(exc, selected)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
