"""What the training commands (``pretrain``, ``train``) share: arguments, config loading, summary."""

from __future__ import annotations

import argparse


def configure_run(parser: argparse.ArgumentParser, kind: str) -> None:
    """Arguments of a training command: --config, --resume, key=value overrides (``kind``'s schema in --help)."""
    from ..config import describe_schema

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = describe_schema(kind)
    parser.add_argument("--config", "-c", default=None, help="YAML config file (see configs/); keys below")
    parser.add_argument("--resume", default=None, metavar="RUN",
                        help="continue an interrupted run: its directory (uses checkpoints/last.ckpt and config.yaml) or a .ckpt")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides, e.g. trainer.max_epochs=2")


def load_run_config(args, kind: str):
    """The resolved config of a training command (``--config``, or the resumed run's, + overrides)."""
    import os

    from ..config import load_config
    from ..train.runs import resolve_resume

    path = args.config
    if args.resume and path is None:
        run_dir, _ = resolve_resume(args.resume)
        path = os.path.join(run_dir, "config.yaml")
        if not os.path.isfile(path):
            from ..errors import SslWsError

            raise SslWsError(f"cannot resume from {args.resume}: a checkpoint is resumed from a run directory's "
                             f"checkpoints/ folder, beside the run's config.yaml (looked for {path}); give the run "
                             f"directory (runs/NAME/STAMP), or the run's config with --config")
        _check_run_kind(run_dir, path, kind)
    return load_config(kind, path, args.overrides)


def _check_run_kind(run_dir: str, config_path: str, kind: str) -> None:
    """A pretraining run resumed by ``train`` (or the reverse) is one line that names the right command."""
    from ..errors import SslWsError
    from ..files import load_yaml

    cfg = load_yaml(config_path)
    was = "pretrain" if "ssl" in cfg else "train" if "supervised" in cfg else None
    if was is not None and was != kind:
        hint = (f"; to fine-tune its encoder: ssl-ws train supervised.pretrained={run_dir}/checkpoints/best.ckpt "
                f"data.store=..." if was == "pretrain" else "")
        raise SslWsError(f"{run_dir} is a `ssl-ws {was}` run: resume it with `ssl-ws {was} --resume {run_dir}`{hint}")


def print_run_summary(res) -> None:
    """The run directory, the final evaluation and (supervised) the best epoch's accuracies."""
    import os

    if os.environ.get("LOCAL_RANK", "0") != "0":
        return
    print(f"run: {res['run_dir']}")
    final = res.get("final") or (res.get("history") or [{}])[-1]
    parts = [f"{k}={v:.4f}" for k, v in final.items() if isinstance(v, float)]
    if parts:
        print("final: " + " ".join(parts))
    if res.get("test_acc") is not None:
        train = f"train_acc={res['train_acc']:.4f} " if res.get("train_acc") is not None else ""
        print(f"best epoch {res['best_epoch']}: {train}val_acc={res['val_acc']:.4f} test_acc={res['test_acc']:.4f}")
    print(f"results: {os.path.join(res['run_dir'], 'results.json')}")
