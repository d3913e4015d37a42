"""``ssl-ws finetune CKPT STORE [key=value ...]``: a pretrained encoder + linear head,
trained end to end.

The supervised LightningModule (:mod:`ssl_ws.train.supervised`) initialized from the
pretrained encoder and its normalizer, with the supervised augmentations of the
config, a new linear head, and the encoder's learning rate scaled by
``--encoder-lr-factor`` (default 0.1); the reported test accuracy is the one at the
epoch of best validation accuracy. ``--labels-per-class N`` trains on N labelled
objects per class (all their views). Any ``train`` config key can be overridden
(``trainer.max_steps=500 optim.lr=3e-4 ...``; see ``ssl-ws train --help``).
"""

from __future__ import annotations

import time

from ._eval_common import add_few_labels, config_of, results_path


def configure(parser):
    parser.add_argument("ckpt", metavar="CKPT", help="exported encoder.pt, or a pretrain/train checkpoint (.ckpt)")
    parser.add_argument("store", metavar="STORE", help="INR store directory")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="train-config overrides right after STORE, e.g. trainer.max_steps=500 optim.lr=3e-4 augment.preset=paper; "
                             "defaults: optim.lr=0.01 (the new head; the encoder gets lr x --encoder-lr-factor) and the "
                             "augmentation preset the encoder was pretrained with")
    parser.add_argument("--config", "-c", default=None, help="a train YAML config to start from (see configs/)")
    parser.add_argument("--encoder-lr-factor", type=float, default=0.1,
                        help="encoder learning rate = optim.lr x this (default: 0.1; 0 freezes it)")
    add_few_labels(parser)
    parser.add_argument("--out", help="results JSON (default: finetune[_lpcN].json beside CKPT)")


def _inherited_augment(args) -> list:
    """Without a --config or augment.* override, fine-tune with the augmentation preset the
    encoder was pretrained with (recorded in its file): the paper preset suits 28x28 INRs,
    not, e.g., the 8x8 digits an encoder may have been pretrained on."""
    from ..models.export import load_payload

    if args.config or any(o.startswith("augment.") for o in args.overrides):
        return []
    cfg = load_payload(args.ckpt).get("config") or {}
    aug = cfg.get("augment") if isinstance(cfg, dict) else None
    return [f"augment.preset={aug['preset']}"] if isinstance(aug, dict) and aug.get("preset") else []


def run(args):
    import numpy as np

    from ..config import load_config
    from ..data import load_store
    from ..errors import SslWsError
    from ..eval.embed import check_compatible
    from ..eval.few_labels import parse_labels_per_class, sample_per_class
    from ..eval.results import encoder_info, store_info, write_results
    from ..models.export import load_encoder
    from ..train.runs import run_train

    if args.encoder_lr_factor < 0:
        raise SslWsError(f"--encoder-lr-factor must be >= 0, got {args.encoder_lr_factor}")
    per_class = parse_labels_per_class(args.labels_per_class)
    # a new linear head learns at 1e-2, the pretrained encoder at 1e-2 x --encoder-lr-factor; measured on the
    # quickstart encoder (10 labels/class, 30 epochs): test acc 0.52 at lr 1e-2 vs 0.28 at the train default 1e-3
    defaults = ["name=finetune", "optim.lr=0.01", f"supervised.encoder_lr_factor={args.encoder_lr_factor}"]
    defaults += _inherited_augment(args)
    fixed = [f"data.store={args.store}", f"supervised.pretrained={args.ckpt}"]
    cfg = load_config("train", args.config, defaults + list(args.overrides) + fixed)
    store = load_store(args.store)
    model = load_encoder(args.ckpt)
    check_compatible(model, store)
    pretrained = encoder_info(model, args.ckpt)  # identity of the *pretrained* weights, before training

    train_rows = store.rows("train", max_views=cfg.data.max_views)
    if train_rows.size == 0:
        raise SslWsError("split 'train' of the store is empty: nothing to fine-tune on")
    for split in ("val", "test"):
        if store.rows(split).size == 0:
            raise SslWsError(f"split {split!r} of the store is empty: fine-tuning selects on val and reports test")
    keep = sample_per_class(store.labels[train_rows], store.object_ids[train_rows], per_class, args.seed)
    train_rows = train_rows[keep]

    model.train()  # load_encoder returns eval mode; Lightning keeps a module's mode, so set training mode here
    t0 = time.perf_counter()
    res = run_train(cfg, pretrained=model, train_rows=train_rows)
    results = {
        "test_acc": res.get("test_acc"),
        "val_acc": res.get("val_acc"),
        "best_epoch": res.get("best_epoch"),
        "epochs": res.get("epochs"),
        "labels_per_class": per_class or "all",
        "n_train": int(train_rows.size),
        "train_objects": int(np.unique(store.object_ids[train_rows]).size),
        "encoder_lr_factor": float(cfg.supervised.encoder_lr_factor),
        "run_dir": res.get("run_dir"),
        "best_checkpoint": res.get("best_checkpoint"),
        "history": res.get("history"),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    train_cfg = res.get("config", {})
    path = write_results(results_path(args, "finetune", per_class), "finetune", results,
                         dict(config_of(args), train_config=train_cfg),
                         encoder=pretrained, store=store_info(store, args.store))
    acc = "n/a" if results["test_acc"] is None else f"{results['test_acc']:.4f}"
    val = "n/a" if results["val_acc"] is None else f"{results['val_acc']:.4f}"
    print(f"fine-tune ({results['labels_per_class']} labels/class, {results['n_train']} train INRs, encoder lr x "
          f"{results['encoder_lr_factor']:g}): test acc {acc} at best val {val} (epoch {results['best_epoch']}); "
          f"run {results['run_dir']}; results -> {path}")
    return 0
