"""The quickstart: the whole pipeline on the embedded digits, stage by stage (``ssl-ws quickstart``).

Each stage calls the library functions its ``ssl-ws`` command calls, prints that command
(``$ ssl-ws ...``: what runs the stage alone) and returns its values; :func:`run_quickstart`
runs them in order, times them and builds the results table from what they return:

1. :func:`fit_stage` (``fit``) -- one SIREN per digit from its own random init, as every
   published INR data set is made (a complete store is reused);
2. :func:`pretrain_stage` (``pretrain``, ``export``) -- SimCLR on a DWSNet encoder; the positives
   are re-fitted views of each training digit (``ssl.refit_views``, :mod:`ssl_ws.inr.refit`); with
   ``second_fit.enabled``, a second row: the same recipe on a store with a real second fit of every digit;
3. :func:`evaluate_stage` (``linear-probe``, ``knn``) -- the pretrained encoders and the same
   architecture with random weights (the baseline every SSL number must beat);
4. :func:`supervised_stage` (``train``) -- the same architecture trained supervised from scratch;
5. :func:`baselines_stage` (``baselines``) -- logistic regression on the raw weights and on the
   rendered pixels, a small CNN on the renders;
6. :func:`retrieval_stage` (``index``, ``query``, ``retrieval-eval``) -- a retrieval index, a
   picture of queries with their neighbours, and how often the first answer has the query's class,
   beside the raw weights and the rendered pixels.

Everything is configured by ``configs/quickstart.yaml`` (:func:`load_quickstart_config`); the
summary is written to ``<output_dir>/quickstart.json``, each evaluation's record under ``eval/``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .errors import SslWsError

REPO_ROOT = Path(__file__).resolve().parents[1]
#: rows of the frozen-embedding table: encoder tag -> what it is
ROW_LABELS = (("pretrained", "SimCLR DWSNet, one fit + refits"), ("second_fit", "SimCLR DWSNet, two real fits"),
              ("random", "same DWSNet, random weights"))
#: the retrieval rows the summary keeps: features -> the post-processing reported (an index's default for the encoder)
RETRIEVAL_POSTS = {"encoder": "center", "raw": "center", "pixels": "l2"}


@dataclass
class QuickstartResult:
    """What :func:`run_quickstart` returns: ``summary`` (the contents of ``quickstart.json``), its path,
    the output directory, the store's class count and each stage's seconds (unrounded, and ``total``)."""

    summary: Dict
    path: str
    output_dir: str
    num_classes: int
    seconds: Dict[str, float]


def _say(*argv) -> None:
    """The command a user would type to run this step alone."""
    print("$ ssl-ws " + " ".join(map(str, argv)), flush=True)


def _stage(title: str) -> float:
    print(f"\n=== {title} " + "=" * max(3, 66 - len(title)), flush=True)
    return time.perf_counter()


def _resolve(path: str) -> str:
    """Config-relative paths (configs/...) resolve against the checkout when not found here."""
    if os.path.exists(path):
        return path
    alt = REPO_ROOT / path
    return str(alt) if alt.exists() else path


def load_quickstart_config(path: Optional[str] = None, tiny: bool = False) -> Dict:
    """The quickstart config (default: ``configs/quickstart.yaml`` of this checkout) as a plain dict,
    with its ``tiny:`` overrides applied when ``tiny``."""
    from omegaconf import OmegaConf

    from .files import load_yaml

    path = Path(path) if path else REPO_ROOT / "configs" / "quickstart.yaml"
    if not path.is_file():
        raise SslWsError(f"quickstart config {str(path)!r} not found")
    cfg = OmegaConf.to_container(load_yaml(path, "quickstart config"), resolve=True)
    if tiny:
        small = cfg.get("tiny", {})
        cfg["fit"].update(small.get("fit", {}))
        cfg.setdefault("second_fit", {}).update(small.get("second_fit", {}))
        for stage in ("pretrain", "supervised"):
            cfg[stage]["overrides"] = list(cfg[stage].get("overrides", [])) + list(small.get(stage, []))
        cfg["evaluate"].update(small.get("evaluate", {}))
        cfg.setdefault("baselines", {}).update(small.get("baselines", {}))
        cfg["retrieval"].update(small.get("retrieval", {}))
    return cfg


def _store_is_complete(path: str, options: Dict) -> bool:
    from .data import load_store

    try:
        store = load_store(path)
    except SslWsError:
        return False
    fit = store.meta.get("fit", {})
    return (int(store.num_views) >= int(options.get("views", 1))
            and fit.get("init_scheme", "independent") == options.get("init", "independent"))


def fit_stage(path: str, options: Dict) -> bool:
    """``ssl-ws fit`` with ``options`` (the command's options, ``eval_views`` for ``--eval-views``) into
    ``path``, unless a complete store is there; returns whether it fitted."""
    import inspect

    from .inr.build import fit_source, psnr_summary

    if _store_is_complete(path, options):
        print(f"reusing the INR store {path} (delete it to fit again)")
        return False
    unknown = sorted(set(options) - set(inspect.signature(fit_source).parameters))
    if unknown:
        raise SslWsError(f"unknown fit option(s) in the quickstart config: {', '.join(unknown)}")
    _say("fit", "--out", path, "--overwrite", *(w for k, v in options.items() for w in (f"--{k.replace('_', '-')}", v)))
    plan, rep = fit_source(path, overwrite=True, **options)
    print(f"wrote {path}: {rep.kept} INRs; {psnr_summary(rep.psnr, plan.fit_cfg['target_psnr'])}")
    return True


def _run_config(kind: str, stage: Dict, store_path: str, output_dir: str, name: str):
    """The run config of ``ssl-ws pretrain|train --config CONFIG data.store=... output_dir=... name=... OVERRIDES``."""
    from .config import load_config

    path = _resolve(stage["config"])
    overrides = [f"data.store={store_path}", f"output_dir={output_dir}", f"name={name}", *stage.get("overrides", [])]
    _say(kind, "--config", path, *overrides)
    return load_config(kind, path, overrides)


def pretrain_stage(stage: Dict, store_path: str, output_dir: str, name: str, encoder_path: str) -> Dict:
    """``ssl-ws pretrain`` (config and overrides of ``stage``) on ``store_path``, then ``ssl-ws export`` of
    its best checkpoint (else its last) to ``encoder_path``; returns the run's results."""
    from .models.export import export_checkpoint
    from .train.runs import run_pretrain

    res = run_pretrain(_run_config("pretrain", stage, store_path, output_dir, name))
    ckpt = res.get("best_checkpoint") or res["last_checkpoint"]
    _say("export", ckpt, "--out", encoder_path)
    export_checkpoint(ckpt, encoder_path)
    print(f"run: {res['run_dir']}; encoder -> {encoder_path}")
    return res


def supervised_stage(stage: Dict, store_path: str, output_dir: str) -> Dict:
    """``ssl-ws train`` (config and overrides of ``stage``) on ``store_path``; returns the run's results."""
    from .train.runs import run_train

    res = run_train(_run_config("train", stage, store_path, output_dir, "supervised"))
    print(f"run: {res['run_dir']}")
    return res


def random_encoder(encoder_path: str, seed: int, out_path: str) -> str:
    """The encoder's architecture and normalizer with random weights (seeded), written to ``out_path``."""
    from .models.export import load_encoder, save_encoder

    save_encoder(load_encoder(encoder_path).reinitialized(seed), out_path)
    return out_path


def _record(path: str, command: str, res: Dict, options: Dict, store, store_path: str, model=None,
            model_path: Optional[str] = None) -> str:
    """The results JSON ``ssl-ws COMMAND --out PATH`` writes."""
    from .eval.results import encoder_info, store_info, write_results

    extra = {"encoder": encoder_info(model, model_path)} if model is not None else {}
    return write_results(path, command, res, options, store=store_info(store, store_path), **extra)


def evaluate_stage(encoders: Dict[str, str], store, store_path: str, labels_per_class: Sequence,
                   output_dir: str) -> Dict[Tuple[str, str], Dict[str, float]]:
    """``ssl-ws linear-probe`` and ``ssl-ws knn`` (their defaults) of every encoder (tag -> path) at each
    ``labels_per_class``; returns ``{(tag, labels per class): {"linear_probe": top-1, "knn": top-1}}``."""
    from .devices import resolve_device
    from .eval.embed import load_encoder_for
    from .eval.few_labels import parse_labels_per_class
    from .eval.protocols import knn_encoder, probe_encoder

    device = resolve_device("auto")
    evals = {}
    protocols = (("linear_probe", "linear-probe", probe_encoder), ("knn", "knn", knn_encoder))
    for tag, path in encoders.items():
        model = load_encoder_for(path, store, device)
        for lpc in map(str, labels_per_class):
            per_class = parse_labels_per_class(lpc)
            top1 = {}
            for key, command, protocol in protocols:
                out = os.path.join(output_dir, "eval", f"{tag}_{key}_{lpc}.json")
                _say(command, path, store_path, "--labels-per-class", lpc, "--out", out, "--quiet")
                res = protocol(model, store, labels_per_class=per_class, device=device)
                _record(out, command, res, {"ckpt": os.path.abspath(path), "labels_per_class": lpc}, store, store_path,
                        model, path)
                top1[key] = res["top1"]
            print(f"{tag}, {lpc} labels/class: linear probe {top1['linear_probe']:.4f}, kNN {top1['knn']:.4f}")
            evals[(tag, lpc)] = top1
    return evals


def baselines_stage(store, store_path: str, options: Dict, output_dir: str) -> Dict:
    """``ssl-ws baselines`` with the ``methods`` and ``cnn_epochs`` of ``options``; returns its results."""
    from .eval.baselines import format_table, run_baselines

    methods, epochs = str(options.get("methods", "raw-lr,pixels-lr,pixels-cnn")), int(options.get("cnn_epochs", 20))
    out = os.path.join(output_dir, "eval", "baselines.json")
    _say("baselines", store_path, "--methods", methods, "--cnn-epochs", epochs, "--out", out, "--quiet")
    res = run_baselines(store, methods, cnn_epochs=epochs, progress=False)
    print(format_table(res))
    _record(out, "baselines", res, {"methods": methods, "cnn_epochs": epochs}, store, store_path)
    return res


def query_rows(store, n: int) -> List[int]:
    """The first test INR (view 0) of each of the first ``n`` classes."""
    picked, seen = [], set()
    for r in store.rows("test", max_views=1):
        lab = int(store.labels[r])
        if lab not in seen:
            seen.add(lab)
            picked.append(int(r))
        if len(picked) == n:
            break
    return picked


def retrieval_summary(res: Dict) -> Dict[str, Dict]:
    """``{features: {"post", "class_r1"}}`` of :func:`~ssl_ws.retrieve.retrieval.evaluate_retrieval`'s rows at
    :data:`RETRIEVAL_POSTS`: the encoder as an index searches, the raw weights centred, the pixels by cosine."""
    return {row["features"]: {"post": row["post"], "class_r1": row.get("class", {}).get("recall@1")}
            for row in res.get("rows", []) if RETRIEVAL_POSTS.get(row.get("features")) == row.get("post")}


def retrieval_stage(encoder_path: str, store, store_path: str, options: Dict, output_dir: str) -> Dict:
    """``ssl-ws index`` (with a projector export), ``ssl-ws query --id ROW --png`` for ``options["queries"]``
    test INRs (``options["k"]`` answers) and ``ssl-ws retrieval-eval`` of the encoder beside the raw weights and
    the pixels; returns ``{"index", "picture", "retrieval": retrieval_summary, "results"}``."""
    from .devices import resolve_device
    from .errors import user_os_errors
    from .eval.embed import load_encoder_for
    from .retrieve.gallery import stack_pictures
    from .retrieve.index import index_store_split
    from .retrieve.projector import export_store_projector
    from .retrieve.query import answer_one, neighbour_table, write_answer
    from .retrieve.retrieval import POSTPROCESS, evaluate_retrieval, format_table
    from .retrieve.searcher import Searcher

    device = resolve_device("auto")
    model = load_encoder_for(encoder_path, store, device)
    index_dir, projector = os.path.join(output_dir, "index"), os.path.join(output_dir, "projector")
    _say("index", encoder_path, store_path, "--out", index_dir, "--projector", projector)
    paths = {"ckpt": os.path.abspath(encoder_path), "store": os.path.abspath(store_path)}
    index = index_store_split(model, store, ckpt_path=encoder_path, store_path=store_path, device=device,
                              progress=True, config=paths)
    index.info["projector"] = export_store_projector(projector, store, index.emb, index.rows, device=device,
                                                     tag="index-all")
    with user_os_errors(f"cannot write the index {index_dir}"):
        index.save(index_dir)
    print(f"indexed {len(index)} INRs -> {index_dir}")
    searcher, k, pngs = Searcher.open(index_dir), int(options["k"]), []
    for row in query_rows(store, int(options["queries"])):
        png = os.path.join(output_dir, "queries", f"query_{row}.png")
        os.makedirs(os.path.dirname(png), exist_ok=True)
        _say("query", index_dir, "--id", row, "-k", k, "--png", png, "--json", png[:-4] + ".json")
        one = answer_one(searcher, k, row=row)
        print(f"query: {one.description}\n{neighbour_table(one.neighbours)}")
        searcher.picture(one.answer, png, one.caption)
        write_answer(png[:-4] + ".json", one, index_dir, searcher.index, {"index_dir": os.path.abspath(index_dir),
                                                                           "row": row, "k": k})
        pngs.append(png)
    picture = stack_pictures(pngs, os.path.join(output_dir, "queries.png")) if pngs else None
    out, features = os.path.join(output_dir, "eval", "retrieval.json"), ["encoder", "raw", "pixels"]
    _say("retrieval-eval", encoder_path, store_path, "--features", ",".join(features), "--out", out, "--quiet")
    res = evaluate_retrieval(store, model, features=features, posts=list(POSTPROCESS), device=device)
    print(format_table(res))
    _record(out, "retrieval", res, {**paths, "features": features}, store, store_path, model, encoder_path)
    return {"index": index_dir, "picture": picture, "retrieval": retrieval_summary(res), "results": res}


def run_quickstart(config: Optional[str] = None, *, tiny: bool = False, output_dir: Optional[str] = None,
                   store: Optional[str] = None) -> QuickstartResult:
    """Every stage in order (see the module doc) with the config ``config`` (default:
    ``configs/quickstart.yaml``); ``output_dir`` / ``store`` replace the config's ``output_dir`` and
    ``fit.out`` (the second-fit store then goes beside ``store``, ``-2fit``). Writes and returns the summary."""
    import numpy as np

    from .data import load_store

    t_start = time.perf_counter()
    cfg = load_quickstart_config(config, tiny)
    out = output_dir or cfg["output_dir"] + ("-tiny" if tiny else "")
    os.makedirs(out, exist_ok=True)
    fit_cfg = dict(cfg["fit"])
    store_path = store or fit_cfg.pop("out")
    fit_cfg.pop("out", None)
    seconds = {}

    t = _stage("1/6 fit INRs to the digits")
    fit_stage(store_path, fit_cfg)
    inrs = load_store(store_path)
    second = dict(cfg.get("second_fit") or {})
    second_path = None
    if second.pop("enabled", False):
        second_path = second.pop("out")
        if store:  # beside the store asked for
            second_path = store.rstrip("/") + "-2fit"
        fit_stage(second_path, {**fit_cfg, **second})
    seconds["fit"] = time.perf_counter() - t

    t = _stage("2/6 SimCLR pretraining")
    encoders = {"pretrained": os.path.join(out, "encoder.pt")}
    pre_res = pretrain_stage(cfg["pretrain"], store_path, out, "simclr", encoders["pretrained"])
    if second_path:  # the same recipe where a real second fit of every digit gives the positives
        encoders["second_fit"] = os.path.join(out, "encoder-second-fit.pt")
        pretrain_stage(cfg["pretrain"], second_path, out, "simclr-second-fit", encoders["second_fit"])
    seconds["pretrain"] = time.perf_counter() - t

    t = _stage("3/6 evaluate: linear probe and kNN, pretrained vs random weights")
    encoders["random"] = random_encoder(encoders["pretrained"], int(pre_res["config"].get("seed", 0)),
                                        os.path.join(out, "random_encoder.pt"))
    evals = evaluate_stage(encoders, inrs, store_path, cfg["evaluate"]["labels_per_class"], out)
    seconds["evaluate"] = time.perf_counter() - t

    t = _stage("4/6 supervised training from scratch (same architecture)")
    sup_res = supervised_stage(cfg["supervised"], store_path, out)
    seconds["supervised"] = time.perf_counter() - t

    t = _stage("5/6 baselines: what a user would do instead of learning from weights")
    baselines = baselines_stage(inrs, store_path, cfg.get("baselines", {}), out)["methods"]
    seconds["baselines"] = time.perf_counter() - t

    t = _stage("6/6 retrieval index and queries")
    retrieval = retrieval_stage(encoders["pretrained"], inrs, store_path, cfg["retrieval"], out)
    seconds["retrieval"] = time.perf_counter() - t

    seconds["total"] = time.perf_counter() - t_start
    rows = [{"model": label, "labels_per_class": str(lpc), **evals[(tag, str(lpc))]}
            for lpc in cfg["evaluate"]["labels_per_class"] for tag, label in ROW_LABELS if (tag, str(lpc)) in evals]
    summary = {
        "store": store_path,
        "n_inrs": len(inrs),
        "psnr_median": float(np.median(inrs.psnr)),
        "table": rows,
        "supervised": {**{k: sup_res.get(k) for k in ("test_acc", "train_acc", "val_acc", "global_step")},
                       "run_dir": sup_res["run_dir"]},
        "baselines": {name: {k: r.get(k) for k in ("train_acc", "val_acc", "test_acc", "seconds")}
                      for name, r in baselines.items()},
        "pretrain_run": pre_res["run_dir"],
        "pretrain_store": pre_res.get("store"),
        "query_picture": retrieval["picture"],
        "retrieval": retrieval["retrieval"],
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "config": cfg,
        "tiny": bool(tiny),
    }
    path = os.path.join(out, "quickstart.json")
    with open(path, "w") as fh:
        json.dump(summary, fh, indent=2, default=float)
    return QuickstartResult(summary, path, out, int(inrs.num_classes), seconds)
