"""``ssl-ws finetune CKPT STORE [key=value ...]``: a pretrained encoder + linear head,
trained end to end.

The policy (defaults, labelled subset, model selection) is :mod:`ssl_ws.train.finetune`:
the pretrained encoder and its normalizer, a new linear head, the encoder's learning rate
scaled by ``--encoder-lr-factor`` (default 0.1); the reported test accuracy is the one at
the evaluation of best validation accuracy. ``--labels-per-class N`` trains on N labelled
objects per class (all their views). Any ``train`` config key can be overridden
(``trainer.max_steps=500 optim.lr=3e-4 ...``; see ``ssl-ws train --help``).
"""

from __future__ import annotations

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


def run(args):
    from ..data import load_store
    from ..eval.few_labels import parse_labels_per_class
    from ..eval.results import encoder_info, store_info, write_results
    from ..models.export import load_payload, model_from_payload
    from ..train.finetune import finetune_config, run_finetune

    payload = load_payload(args.ckpt)  # read once: the encoder and the config it was pretrained with
    cfg = finetune_config(args.ckpt, args.store, args.overrides, args.config, args.encoder_lr_factor,
                          pretrain_config=payload.get("config") or {})
    per_class = parse_labels_per_class(args.labels_per_class)
    store = load_store(args.store)
    model = model_from_payload(payload, args.ckpt).eval()
    pretrained = encoder_info(model, args.ckpt)  # identity of the *pretrained* weights, before training
    results = run_finetune(cfg, model, store, per_class, seed=args.seed)
    train_cfg = results.pop("train_config")
    path = write_results(results_path(args, "finetune", per_class), "finetune", results,
                         dict(config_of(args), train_config=train_cfg),
                         encoder=pretrained, store=store_info(store, args.store))
    acc = "n/a" if results["test_acc"] is None else f"{results['test_acc']:.4f}"
    val = "n/a" if results["val_acc"] is None else f"{results['val_acc']:.4f}"
    print(f"fine-tune ({results['labels_per_class']} labels/class, {results['n_train']} train INRs, encoder lr x "
          f"{results['encoder_lr_factor']:g}): test acc {acc} at best val {val} (epoch {results['best_epoch']}); "
          f"run {results['run_dir']}; results -> {path}")
    return 0
