"""`ssl-ws quickstart [--tiny]`: the whole pipeline on the embedded digits.

Stages, each run through :func:`ssl_ws.cli.main` with the arguments a user would type,
so the quickstart exercises exactly the code of the individual commands:

1. ``fit``           -- one SIREN per digit from its own random init, as every published INR data
   set is made (cached);
2. ``pretrain``      -- SimCLR on a DWSNet encoder; the positives are re-fitted views of each
   training digit (``ssl.refit_views``, :mod:`ssl_ws.inr.refit`), made from its one fit; and, as a
   second row, the same recipe on a store with a real second fit of every digit;
3. ``linear-probe`` / ``knn`` -- the pretrained encoder, and the same architecture with
   random weights (the baseline every SSL number must beat);
4. ``train``         -- the same architecture trained supervised from scratch;
5. ``baselines``     -- what a user would do instead of learning from weights: logistic
   regression on the raw weights and on the rendered pixels, a small CNN on the renders;
6. ``index`` / ``query`` / ``retrieval-eval`` -- a retrieval index, a picture of queries with
   their neighbours, and how good the answers are (a same-class first answer) beside the raw
   weights and the rendered pixels;
7. a results table (train and test accuracy of every model), printed and written to
   ``<output_dir>/quickstart.json``.

Everything is configured by ``configs/quickstart.yaml``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ROW_LABELS = (("pretrained", "SimCLR DWSNet, one fit + refits"), ("second_fit", "SimCLR DWSNet, two real fits"),
              ("random", "same DWSNet, random weights"))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None,
                        help="quickstart config (default: configs/quickstart.yaml of this checkout)")
    parser.add_argument("--tiny", action="store_true",
                        help="a few hundred INRs and one or two epochs: the end-to-end test of the pipeline")
    parser.add_argument("--output-dir", default=None, help="where results go (default: the config's output_dir)")
    parser.add_argument("--store", default=None, help="INR store to use or create (default: the config's fit.out)")


def _config_path(arg):
    from ..errors import SslWsError

    path = Path(arg) if arg else REPO_ROOT / "configs" / "quickstart.yaml"
    if not path.is_file():
        raise SslWsError(f"quickstart config {str(path)!r} not found")
    return path


def _resolve(path: str) -> str:
    """Config-relative paths (configs/...) resolve against the checkout when not found here."""
    if os.path.exists(path):
        return path
    alt = REPO_ROOT / path
    return str(alt) if alt.exists() else path


def _stage(title: str) -> float:
    print(f"\n=== {title} " + "=" * max(3, 66 - len(title)), flush=True)
    return time.perf_counter()


def _cli(argv):
    from ..cli import main
    from ..errors import SslWsError

    print("$ ssl-ws " + " ".join(argv), flush=True)
    code = main(argv)
    if code:
        raise SslWsError(f"stage `ssl-ws {argv[0]}` failed (exit {code}); see the message above")


def _newest_run(output_dir: str, name: str) -> str:
    runs = sorted(glob.glob(os.path.join(output_dir, name, "*", "results.json")))
    if not runs:
        from ..errors import SslWsError

        raise SslWsError(f"no results.json under {os.path.join(output_dir, name)}")
    return os.path.dirname(runs[-1])


def _store_is_complete(path: str, cfg) -> bool:
    from ..data import load_store
    from ..errors import SslWsError

    try:
        store = load_store(path)
    except SslWsError:
        return False
    fit = store.meta.get("fit", {})
    return int(store.num_views) >= int(cfg.get("views", 1)) and fit.get("init_scheme", "independent") == cfg.get(
        "init", "independent"
    )


def _fit_or_reuse(path: str, fit_cfg) -> None:
    """``ssl-ws fit`` with the options of ``fit_cfg`` into ``path``, unless a complete store is there."""
    if _store_is_complete(path, fit_cfg):
        print(f"reusing the INR store {path} (delete it to fit again)")
        return
    argv = ["fit", "--out", path, "--overwrite"]
    for key, value in fit_cfg.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    _cli(argv)


def _random_encoder(encoder_path: str, seed: int, out_path: str) -> str:
    """The pretrained encoder's architecture and normalizer with random weights: the baseline."""
    from ..models.export import load_encoder, save_encoder

    save_encoder(load_encoder(encoder_path).reinitialized(seed), out_path)
    return out_path


def _query_rows(store, n: int):
    """The first test INR (view 0) of each of the first n classes."""
    rows = store.rows("test", max_views=1)
    picked, seen = [], set()
    for r in rows:
        lab = int(store.labels[r])
        if lab not in seen:
            seen.add(lab)
            picked.append(int(r))
        if len(picked) == n:
            break
    return picked


def _retrieval_summary(results) -> dict:
    """``{features: {"post", "class_r1"}}`` of ``ssl-ws retrieval-eval``'s results: the encoder at
    the post-processing an index uses by default, the raw weights centred, the rendered pixels
    by cosine (``l2``)."""
    from ..retrieve.index import DEFAULT_POST

    want = {"encoder": DEFAULT_POST, "raw": "center", "pixels": "l2"}
    out = {}
    for row in results.get("rows", []):
        feat, post = row.get("features"), row.get("post")
        if want.get(feat) == post:
            out[feat] = {"post": post, "class_r1": row.get("class", {}).get("recall@1")}
    return out


def run(args) -> int:
    from omegaconf import OmegaConf

    from ..files import load_yaml

    from ..data import load_store
    from ..retrieve.gallery import stack_pictures

    t_start = time.perf_counter()
    cfg = OmegaConf.to_container(load_yaml(_config_path(args.config), "quickstart config"), resolve=True)
    if args.tiny:
        tiny = cfg.get("tiny", {})
        cfg["fit"].update(tiny.get("fit", {}))
        cfg.setdefault("second_fit", {}).update(tiny.get("second_fit", {}))
        cfg["pretrain"]["overrides"] = list(cfg["pretrain"].get("overrides", [])) + list(tiny.get("pretrain", []))
        cfg["supervised"]["overrides"] = list(cfg["supervised"].get("overrides", [])) + list(tiny.get("supervised", []))
        cfg["evaluate"].update(tiny.get("evaluate", {}))
        cfg.setdefault("baselines", {}).update(tiny.get("baselines", {}))
        cfg["retrieval"].update(tiny.get("retrieval", {}))
    out = args.output_dir or cfg["output_dir"] + ("-tiny" if args.tiny else "")
    os.makedirs(out, exist_ok=True)
    fit_cfg = dict(cfg["fit"])
    store_path = args.store or fit_cfg.pop("out")
    fit_cfg.pop("out", None)
    timings = {}

    # 1. fit ------------------------------------------------------------------------------
    t = _stage("1/6 fit INRs to the digits")
    _fit_or_reuse(store_path, fit_cfg)
    store = load_store(store_path)
    second = dict(cfg.get("second_fit") or {})
    if second.get("enabled", False):
        second_path = second.pop("out")
        if args.store:  # beside the store asked for
            second_path = args.store.rstrip("/") + "-2fit"
        second.pop("enabled")
        _fit_or_reuse(second_path, {**fit_cfg, **second})
    else:
        second_path = None
    timings["fit"] = time.perf_counter() - t

    # 2. pretrain ---------------------------------------------------------------------------
    t = _stage("2/6 SimCLR pretraining")
    common = [f"data.store={store_path}", f"output_dir={out}"]
    _cli(["pretrain", "--config", _resolve(cfg["pretrain"]["config"]), *common, "name=simclr",
          *cfg["pretrain"].get("overrides", [])])
    pre_run = _newest_run(out, "simclr")
    pre_res = json.load(open(os.path.join(pre_run, "results.json")))
    ckpt = pre_res.get("best_checkpoint") or pre_res["last_checkpoint"]
    _cli(["export", ckpt, "--out", os.path.join(out, "encoder.pt")])
    encoders = {"pretrained": os.path.join(out, "encoder.pt")}
    if second_path:  # the same recipe where a real second fit of every digit gives the positives
        _cli(["pretrain", "--config", _resolve(cfg["pretrain"]["config"]), f"data.store={second_path}",
              f"output_dir={out}", "name=simclr-second-fit", *cfg["pretrain"].get("overrides", [])])
        res2 = json.load(open(os.path.join(_newest_run(out, "simclr-second-fit"), "results.json")))
        _cli(["export", res2.get("best_checkpoint") or res2["last_checkpoint"], "--out",
              os.path.join(out, "encoder-second-fit.pt")])
        encoders["second_fit"] = os.path.join(out, "encoder-second-fit.pt")
    timings["pretrain"] = time.perf_counter() - t

    # 3. evaluate: pretrained vs random init -------------------------------------------------
    t = _stage("3/6 evaluate: linear probe and kNN, pretrained vs random weights")
    random_ckpt = _random_encoder(os.path.join(out, "encoder.pt"), int(pre_res["config"].get("seed", 0)),
                                  os.path.join(out, "random_encoder.pt"))
    evals = {}
    for tag, enc in [*encoders.items(), ("random", random_ckpt)]:
        for lpc in cfg["evaluate"]["labels_per_class"]:
            lpc = str(lpc)
            probe_json = os.path.join(out, "eval", f"{tag}_linear_probe_{lpc}.json")
            knn_json = os.path.join(out, "eval", f"{tag}_knn_{lpc}.json")
            _cli(["linear-probe", enc, store_path, "--labels-per-class", lpc, "--out", probe_json, "--quiet"])
            _cli(["knn", enc, store_path, "--labels-per-class", lpc, "--out", knn_json, "--quiet"])
            evals[(tag, lpc)] = {
                "linear_probe": json.load(open(probe_json))["results"]["top1"],
                "knn": json.load(open(knn_json))["results"]["top1"],
            }
    timings["evaluate"] = time.perf_counter() - t

    # 4. supervised from scratch ---------------------------------------------------------------
    t = _stage("4/6 supervised training from scratch (same architecture)")
    _cli(["train", "--config", _resolve(cfg["supervised"]["config"]), *common, "name=supervised",
          *cfg["supervised"].get("overrides", [])])
    sup_run = _newest_run(out, "supervised")
    sup_res = json.load(open(os.path.join(sup_run, "results.json")))
    timings["supervised"] = time.perf_counter() - t

    # 5. baselines --------------------------------------------------------------------------------
    t = _stage("5/6 baselines: what a user would do instead of learning from weights")
    bcfg = cfg.get("baselines", {})
    base_json = os.path.join(out, "eval", "baselines.json")
    _cli(["baselines", store_path, "--methods", str(bcfg.get("methods", "raw-lr,pixels-lr,pixels-cnn")),
          "--cnn-epochs", str(bcfg.get("cnn_epochs", 20)), "--out", base_json, "--quiet"])
    baselines = json.load(open(base_json))["results"]["methods"]
    timings["baselines"] = time.perf_counter() - t

    # 6. retrieval ------------------------------------------------------------------------------
    t = _stage("6/6 retrieval index and queries")
    index_dir = os.path.join(out, "index")
    _cli(["index", os.path.join(out, "encoder.pt"), store_path, "--out", index_dir,
          "--projector", os.path.join(out, "projector")])
    pngs = []
    for row in _query_rows(store, int(cfg["retrieval"]["queries"])):
        png = os.path.join(out, "queries", f"query_{row}.png")
        os.makedirs(os.path.dirname(png), exist_ok=True)
        _cli(["query", index_dir, "--id", str(row), "-k", str(cfg["retrieval"]["k"]), "--png", png,
              "--json", png[:-4] + ".json"])
        pngs.append(png)
    picture = stack_pictures(pngs, os.path.join(out, "queries.png")) if pngs else None
    retr_json = os.path.join(out, "eval", "retrieval.json")
    _cli(["retrieval-eval", os.path.join(out, "encoder.pt"), store_path, "--features", "encoder,raw,pixels",
          "--out", retr_json, "--quiet"])
    retrieval = _retrieval_summary(json.load(open(retr_json))["results"])
    timings["retrieval"] = time.perf_counter() - t

    # table ------------------------------------------------------------------------------------
    total = time.perf_counter() - t_start
    rows = []
    for lpc in cfg["evaluate"]["labels_per_class"]:
        lpc = str(lpc)
        for tag, label in ROW_LABELS:
            if (tag, lpc) not in evals:
                continue
            e = evals[(tag, lpc)]
            rows.append({"model": label, "labels_per_class": lpc, "linear_probe": e["linear_probe"], "knn": e["knn"]})
    summary = {
        "store": store_path,
        "n_inrs": len(store),
        "psnr_median": float(__import__("numpy").median(store.psnr)),
        "table": rows,
        "supervised": {"test_acc": sup_res.get("test_acc"), "train_acc": sup_res.get("train_acc"),
                       "val_acc": sup_res.get("val_acc"), "global_step": sup_res.get("global_step"), "run_dir": sup_run},
        "baselines": {name: {k: r.get(k) for k in ("train_acc", "val_acc", "test_acc", "seconds")}
                      for name, r in baselines.items()},
        "pretrain_run": pre_run,
        "pretrain_store": pre_res.get("store"),
        "query_picture": picture,
        "retrieval": retrieval,
        "seconds": {k: round(v, 1) for k, v in timings.items()} | {"total": round(total, 1)},
        "config": cfg,
        "tiny": bool(args.tiny),
    }
    with open(os.path.join(out, "quickstart.json"), "w") as fh:
        json.dump(summary, fh, indent=2)

    print("\n=== results " + "=" * 58)
    print(f"{len(store)} INRs of {store.num_classes} classes, median PSNR {summary['psnr_median']:.1f} dB; "
          f"top-1 accuracy on the test split")
    print(f"{'frozen embeddings':<40} {'labels/class':>12} {'linear probe':>13} {'kNN':>7}")
    for r in rows:
        print(f"{r['model']:<40} {r['labels_per_class']:>12} {r['linear_probe']:>13.3f} {r['knn']:>7.3f}")
    fmt = lambda v: "   —" if v is None else f"{v:.3f}"
    print(f"\n{'trained end to end, all labels':<40} {'train acc':>12} {'test acc':>13}")
    print(f"{'same DWSNet, supervised':<40} {fmt(sup_res.get('train_acc')):>12} {fmt(sup_res.get('test_acc')):>13}")
    names = {"raw-lr": "baseline: LR on raw weights", "pixels-lr": "baseline: LR on rendered pixels",
             "pixels-cnn": "baseline: small CNN on rendered pixels"}
    for name, r in baselines.items():
        print(f"{names.get(name, name):<40} {fmt(r.get('train_acc')):>12} {fmt(r.get('test_acc')):>13}")
    if retrieval:
        print(f"\n{'retrieval (test split, query left out)':<40} {'same class first':>17}")
        for key, label in (("encoder", "SimCLR DWSNet, one fit + refits"), ("raw", "raw standardized weights"),
                           ("pixels", "rendered pixels, cosine")):
            r = retrieval.get(key)
            if r:
                print(f"{label:<40} {r['class_r1']:>17.3f}")
    print(f"\nquery picture: {picture}")
    print(f"results: {os.path.join(out, 'quickstart.json')}")
    print(f"TensorBoard: tensorboard --logdir {out}")
    print(f"search it in a browser: pip install -e \".[serve]\" && ssl-ws serve {os.path.join(out, 'index')}")
    print(f"total time {total:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + ")")
    return 0
