#!/usr/bin/env python
"""Self-supervision from one fit per object (issue 31): step-matched SimCLR rows on one store.

Every row is one ``ssl-ws pretrain`` at the same ``trainer.max_steps`` on the same one-fit
store (model selection: the best online kNN on the validation split), then, on the test
split with the original fits (view 0): linear probe with all labels and with 10 per class,
weighted kNN (k = 20) with all labels and 10 per class, and same-class retrieval recall@1
(queries and bank the test split, each query left out). Beside the rows, once per store:
the same encoders with random weights, logistic regression on the rendered pixels, and
cosine on the rendered pixels for retrieval. Each row writes ``<out>/<row>/row.json`` as it
finishes; a finished row is not run again (resumable), so rows can be added and re-printed.

    python benchmarks/one_fit_ssl.py --store /work/data/fmnist-1fit-small --config configs/pretrain/best.yaml \\
        --steps 1000 --rows same-fit refit1 pixels-cnn --out /work/runs/one-fit-fmnist
    python benchmarks/one_fit_ssl.py --out /work/runs/one-fit-fmnist --print-only

Run with ``OMP_NUM_THREADS=1`` beside another job; at most two at once on a 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> overrides of the pretrain config (all rows: same store, same steps)
ROWS = {
    # the one-fit baseline: two augmentations of the single fit are the positives
    "same-fit": ["ssl.positives=same_fit", "ssl.refit_views=0"],
    "same-fit-paper": ["ssl.positives=same_fit", "ssl.refit_views=0", "augment.preset=paper"],
    # re-fitted views (`ssl-ws refit`): K new fits of each training object from fresh inits
    "refit1": ["ssl.refit_views=1"],
    "refit2": ["ssl.refit_views=2"],
    "refit1-none": ["ssl.refit_views=1", "augment.preset=none"],
    "refit2-none": ["ssl.refit_views=2", "augment.preset=none"],
    # a nonlinear per-layer embedding of every neuron's probe features before the DWS layers
    "refit1-pe64": ["ssl.refit_views=1", "encoder.probe_embed=64"],
    "refit2-pe64": ["ssl.refit_views=2", "encoder.probe_embed=64"],
    "refit2-pe128-h32": ["ssl.refit_views=2", "encoder.probe_embed=128", "encoder.hidden=32"],
    "refit2-t0.2": ["ssl.refit_views=2", "ssl.temperature=0.2"],
    "refit4": ["ssl.refit_views=4"],
    "refit1-crop": ["ssl.refit_views=1", "augment.preset=crop"],
    "refit2-h32": ["ssl.refit_views=2", "encoder.hidden=32"],
    "refit2-crop": ["ssl.refit_views=2", "augment.preset=crop"],
    "refit1-crop-t0.2": ["ssl.refit_views=1", "augment.preset=crop", "ssl.temperature=0.2"],
    "refit1-t0.2": ["ssl.refit_views=1", "ssl.temperature=0.2"],
    "refit1-t0.15": ["ssl.refit_views=1", "ssl.temperature=0.15"],
    "refit1-b128": ["ssl.refit_views=1", "data.batch_size=128"],
    "refit2-b128": ["ssl.refit_views=2", "data.batch_size=128"],
    "refit1-vicreg": ["ssl.refit_views=1", "ssl.objective=vicreg"],
    "refit1-barlowtwins": ["ssl.refit_views=1", "ssl.objective=barlowtwins"],
    "refit1-byol": ["ssl.refit_views=1", "ssl.objective=byol"],
    "refit2-vicreg": ["ssl.refit_views=2", "ssl.objective=vicreg"],
    "refit2-byol": ["ssl.refit_views=2", "ssl.objective=byol"],
    # the functional baselines, trained by the same SimCLR recipe: the INR rendered on its pixel grid
    "pixels-cnn": ["encoder.name=pixels-cnn", "ssl.positives=same_fit", "ssl.refit_views=0"],
    "pixels-cnn-refit1": ["encoder.name=pixels-cnn", "ssl.refit_views=1"],
}


def sh(cmd, log):
    """Run ``cmd`` (list), appending its output to ``log``; raise on failure."""
    with open(log, "a") as fh:
        fh.write("+ " + shlex.join(cmd) + "\n")
        fh.flush()
        t = time.perf_counter()
        code = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        fh.write(f"# exit {code} after {time.perf_counter() - t:.1f} s\n")
    if code:
        raise SystemExit(f"failed ({code}): {shlex.join(cmd)} (see {log})")


def cli(*args):
    return [sys.executable, "-m", "ssl_ws.cli", *map(str, args)]


def evaluate(ckpt: str, store: str, d: str, log: str, features: str = "encoder") -> dict:
    """Probe / kNN (all, 10 per class) and retrieval of ``ckpt`` on the test split (view 0)."""
    out = {}
    for lpc in ("all", "10"):
        for kind in ("linear-probe", "knn"):
            path = os.path.join(d, f"{kind}_{lpc}.json")
            if not os.path.exists(path):
                sh(cli(kind, ckpt, store, "--max-views", 1, "--labels-per-class", lpc, "--quiet", "--out", path), log)
            out[f"{'probe' if kind == 'linear-probe' else 'knn'}_{lpc}"] = json.load(open(path))["results"]["top1"]
    path = os.path.join(d, "retrieval.json")
    if not os.path.exists(path):
        sh(cli("retrieval-eval", ckpt, store, "--max-views", 1, "--features", features, "--post", "l2", "--quiet",
               "--out", path), log)
    for row in json.load(open(path))["results"]["rows"]:
        out[f"class_r1_{row['features']}"] = row["class"]["recall@1"]
    return out


def run_row(name: str, args) -> dict:
    d = os.path.join(args.out, name)
    done = os.path.join(d, "row.json")
    if os.path.exists(done):
        return json.load(open(done))
    os.makedirs(d, exist_ok=True)
    log = os.path.join(d, "log.txt")
    runs = os.path.join(d, "runs")
    found = sorted(os.path.join(dp, "results.json") for dp, _, fs in os.walk(runs) if "results.json" in fs)
    t = time.perf_counter()
    if not found:
        every = max(args.steps // 10, 1)
        sh(cli("pretrain", "--config", args.config, f"data.store={args.store}", f"output_dir={runs}", f"name={name}",
               f"seed={args.seed}", f"trainer.max_steps={args.steps}", f"eval.every_n_steps={every}",
               f"ssl.refit_dir={os.path.join(args.out, 'refits')}", "trainer.progress_bar=false",
               *ROWS[name], *args.extra), log)
        found = sorted(os.path.join(dp, "results.json") for dp, _, fs in os.walk(runs) if "results.json" in fs)
    seconds = time.perf_counter() - t
    res = json.load(open(found[-1]))
    ckpt = res.get("best_checkpoint") or res["last_checkpoint"]
    row = {"name": name, "config": args.config, "overrides": ROWS[name] + list(args.extra), "steps": res["global_step"],
           "pretrain_seconds": round(seconds, 1), "store": args.store, "trained_on": res["store"],
           "best": res.get("best"), "history": res["history"], **evaluate(ckpt, args.store, d, log)}
    with open(done, "w") as fh:
        json.dump(row, fh, indent=2)
    return row


def run_baselines(args) -> dict:
    """Random-weight encoders of each row's architecture, pixel LR and pixel-cosine retrieval."""
    d = os.path.join(args.out, "baselines")
    done = os.path.join(d, "baselines.json")
    if os.path.exists(done):
        return json.load(open(done))
    os.makedirs(d, exist_ok=True)
    log = os.path.join(d, "log.txt")
    out = {}
    path = os.path.join(d, "pixels_lr.json")
    if not os.path.exists(path):
        sh(cli("baselines", args.store, "--methods", "pixels-lr", "--quiet", "--out", path), log)
    m = json.load(open(path))["results"]["methods"]["pixels-lr"]
    out["pixels_lr"] = {"train_acc": m.get("train_acc"), "test_acc": m.get("test_acc")}
    # random weights: the first finished row's architecture (the config's encoder)
    for name in args.rows:
        row_dir = os.path.join(args.out, name, "runs")
        found = sorted(os.path.join(dp, "results.json") for dp, _, fs in os.walk(row_dir) if "results.json" in fs)
        if not found or name.startswith("pixels"):
            continue
        res = json.load(open(found[-1]))
        enc = os.path.join(d, "encoder.pt")
        rnd = os.path.join(d, "random_encoder.pt")
        sh(cli("export", res.get("best_checkpoint") or res["last_checkpoint"], "--out", enc), log)
        from ssl_ws.models.export import load_encoder, save_encoder

        save_encoder(load_encoder(enc).reinitialized(args.seed), rnd)
        out["random"] = evaluate(rnd, args.store, os.path.join(d, "random"), log, features="encoder,pixels")
        break
    with open(done, "w") as fh:
        json.dump(out, fh, indent=2)
    return out


def fmt(v):
    return "   —" if v is None else f"{v:.3f}"


def print_table(out_dir: str) -> None:
    rows = []
    for name in sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []:
        p = os.path.join(out_dir, name, "row.json")
        if os.path.exists(p):
            rows.append(json.load(open(p)))
    if not rows:
        print(f"no finished rows in {out_dir}")
        return
    print(f"store {rows[0]['store']}; test split, view 0; model selection on val (online kNN)")
    head = f"{'row':<22} {'steps':>5} {'probe':>6} {'p@10':>6} {'kNN':>6} {'k@10':>6} {'R@1':>6} {'loss end':>8} {'s':>6}"
    print(head)
    for r in rows:
        loss = r["history"][-1].get("loss") if r["history"] else None
        print(f"{r['name']:<22} {r['steps']:>5} {fmt(r['probe_all']):>6} {fmt(r['probe_10']):>6} {fmt(r['knn_all']):>6} "
              f"{fmt(r['knn_10']):>6} {fmt(r.get('class_r1_encoder')):>6} {fmt(loss):>8} {r['pretrain_seconds']:>6.0f}")
    b = os.path.join(out_dir, "baselines", "baselines.json")
    if os.path.exists(b):
        b = json.load(open(b))
        rnd = b.get("random")
        if rnd:
            print(f"{'random weights':<22} {'':>5} {fmt(rnd['probe_all']):>6} {fmt(rnd['probe_10']):>6} "
                  f"{fmt(rnd['knn_all']):>6} {fmt(rnd['knn_10']):>6} {fmt(rnd.get('class_r1_encoder')):>6}")
            print(f"{'rendered pixels':<22} {'':>5} {fmt(b['pixels_lr']['test_acc']):>6} {'':>6} {'':>6} {'':>6} "
                  f"{fmt(rnd.get('class_r1_pixels')):>6}   (LR train {fmt(b['pixels_lr']['train_acc'])}; R@1: cosine)")
    print("curves (step: loss / online kNN / online probe on val):")
    for r in rows:
        pts = [f"{h.get('step', '?')}: {fmt(h.get('loss'))}/{fmt(h.get('knn_acc'))}/{fmt(h.get('probe_acc'))}"
               for h in r["history"]]
        print(f"  {r['name']}: " + "; ".join(pts))
    first = rows[0]
    print(f"\nreproduce: python benchmarks/one_fit_ssl.py --store {first['store']} --config {first.get('config')} "
          f"--steps {first['steps']} --rows {' '.join(r['name'] for r in rows)} --out {out_dir}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store")
    p.add_argument("--config", default="configs/pretrain/best.yaml")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rows", nargs="*", default=["same-fit", "refit1", "pixels-cnn"], choices=sorted(ROWS))
    p.add_argument("--extra", nargs="*", default=[], help="overrides added to every row")
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--out", required=True)
    p.add_argument("--print-only", action="store_true")
    args = p.parse_args(argv)
    if not args.print_only:
        if not args.store:
            p.error("--store is required unless --print-only")
        for name in args.rows:
            run_row(name, args)
            print_table(args.out)
        if not args.no_baselines:
            run_baselines(args)
    print_table(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
