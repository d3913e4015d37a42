#!/usr/bin/env python
"""Why one-fit SimCLR is trivial (issue 31, item 1): how far apart are the positives, and what
does a trained encoder key on?

On a store whose training objects have two fits or more (e.g. a one-fit store after
``ssl-ws refit``), for ``--n`` training objects it compares four kinds of pairs:

* ``aug``: two augmentations (``--preset``) of one fit -- SimCLR's positives with one fit;
* ``fit``: two fits of one object (view 0 and view 1) -- the positives of a multi-view store;
* ``class``: two objects of one class (view 0 each);
* ``other``: two objects of different classes,

in three spaces: the standardized flat weights (the normalizer of the first encoder), the
INR rendered on its pixel grid, and the L2-normalized embedding of each encoder given. For each
space it prints the mean cosine similarity of each pair kind and, for encoders, the alignment
``E ||z1 - z2||^2`` of both positive kinds and the uniformity ``log E exp(-2 ||zi - zj||^2)``
(Wang & Isola, ICML 2020), and how often an INR's nearest neighbour among the other fits is its
own object's fit ("fit top-1": the pretext task of a two-fit store, which a one-fit encoder can
only solve by what the image shows).

    python benchmarks/one_fit_diagnostics.py --store /work/runs/one-fit-fmnist/refits/<store>-k1 \\
        --encoders same-fit=/path/best.ckpt refit1=/path/best.ckpt
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch


def pairs_rows(store, n: int, seed: int):
    """Rows ``(a0, a1, b0, c0)``: view 0 and view 1 of ``n`` training objects, an object of
    the same class and one of another class (view 0 each)."""
    rng = np.random.default_rng(seed)
    train = store.rows("train")
    obj, view, lab = store.object_ids[train], store.view_ids[train], store.labels[train]
    v0 = {int(o): int(r) for o, v, r in zip(obj, view, train) if v == 0}
    v1 = {int(o): int(r) for o, v, r in zip(obj, view, train) if v == 1}
    objs = np.array(sorted(set(v0) & set(v1)))
    if len(objs) < 4:
        raise SystemExit("the store needs training objects with views 0 and 1 (run `ssl-ws refit` first)")
    objs = rng.choice(objs, size=min(n, len(objs)), replace=False)
    label = {int(o): int(l) for o, l in zip(obj, lab)}
    by_class = {}
    for o in v0:
        by_class.setdefault(label[o], []).append(o)
    same = [rng.choice([p for p in by_class[label[int(o)]] if p != o]) for o in objs]
    other = [rng.choice([p for p in v0 if label[p] != label[int(o)]]) for o in objs]
    return (np.array([v0[int(o)] for o in objs]), np.array([v1[int(o)] for o in objs]),
            np.array([v0[int(o)] for o in same]), np.array([v0[int(o)] for o in other]))


def cos(a, b):
    return float(torch.nn.functional.cosine_similarity(a, b, dim=1).mean())


def summarize(name, z0, z0b, z1, zc, zo, out):
    z0, z0b, z1, zc, zo = (torch.nn.functional.normalize(z.flatten(1).double(), dim=1) for z in (z0, z0b, z1, zc, zo))
    sim = z0 @ z1.T  # INR's view 0 against every object's view 1
    fit_top1 = float((sim.argmax(1) == torch.arange(len(z0))).double().mean())
    d2 = torch.cdist(z0, z0).pow(2)
    off = ~torch.eye(len(z0), dtype=torch.bool)
    row = {"cos_aug": cos(z0, z0b), "cos_fit": cos(z0, z1), "cos_class": cos(z0, zc), "cos_other": cos(z0, zo),
           "align_aug": float((z0 - z0b).pow(2).sum(1).mean()), "align_fit": float((z0 - z1).pow(2).sum(1).mean()),
           "uniformity": float(torch.log(torch.exp(-2 * d2[off]).mean())), "fit_top1": fit_top1}
    out[name] = row
    print(f"{name:<16} " + " ".join(f"{row[k]:>9.3f}" for k in ("cos_aug", "cos_fit", "cos_class", "cos_other",
                                                                  "align_aug", "align_fit", "uniformity", "fit_top1")))


def main(argv=None) -> int:
    from ssl_ws.augment.presets import preset
    from ssl_ws.data import load_store
    from ssl_ws.inr.render import render_image
    from ssl_ws.models.export import load_encoder

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True)
    p.add_argument("--encoders", nargs="*", default=[], help="name=checkpoint or encoder.pt")
    p.add_argument("--preset", default="weak")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="results JSON")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    store = load_store(args.store)
    a0, a1, c0, o0 = pairs_rows(store, args.n, args.seed)
    ws = {k: store.weights(r) for k, r in (("a0", a0), ("a1", a1), ("c0", c0), ("o0", o0))}
    g = torch.Generator().manual_seed(args.seed)
    aug = preset(args.preset)
    ws["a0x"], ws["a0y"] = aug(ws["a0"], generator=g), aug(ws["a0"], generator=g)
    out = {}
    print(f"{args.n} training objects of {args.store}; pairs: aug = two `{args.preset}` augmentations of one fit, "
          f"fit = two fits of one object, class = same class, other = other class")
    print(f"{'space':<16} " + " ".join(f"{k:>9}" for k in ("cos aug", "cos fit", "cos class", "cos other",
                                                          "align aug", "align fit", "uniform", "fit top1")))
    models = {}
    for spec in args.encoders:
        name, path = spec.split("=", 1)
        models[name] = load_encoder(path).eval()
    with torch.no_grad():
        if models:
            norm = next(iter(models.values())).normalizer
            flat = {k: norm(v).to_flat() for k, v in ws.items()}
            summarize("weights (std.)", flat["a0x"], flat["a0y"], flat["a1"], flat["c0"], flat["o0"], out)
        h, w = store.image_size
        img = {k: render_image(v, h, w) - 0.5 for k, v in ws.items()}
        summarize("rendered pixels", img["a0x"], img["a0y"], img["a1"], img["c0"], img["o0"], out)
        for name, m in models.items():
            z = {k: torch.cat([m(v[i:i + 512]) for i in range(0, len(v), 512)]) for k, v in ws.items()}
            summarize(name, z["a0x"], z["a0y"], z["a1"], z["c0"], z["o0"], out)
            rnd = m.reinitialized(args.seed)
            z = {k: torch.cat([rnd(v[i:i + 512]) for i in range(0, len(v), 512)]) for k, v in ws.items()}
            summarize(f"{name} random", z["a0x"], z["a0y"], z["a1"], z["c0"], z["o0"], out)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"store": args.store, "preset": args.preset, "n": args.n, "rows": out}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
