"""Retrieval metrics on hand-made embeddings with known answers; self-exclusion; whitening;
the retrieval-eval command on a tiny store."""

import json

import numpy as np
import pytest

from ssl_ws.retrieve.retrieval import median_random_cosine, postprocess, retrieval_metrics


def metrics(emb, obj, lab, ks=(1, 2)):
    rows = np.arange(len(emb))
    return retrieval_metrics(emb, emb, query_rows=rows, bank_rows=rows, query_objects=obj, bank_objects=obj,
                             query_labels=lab, bank_labels=lab, ks=ks)


def reference(emb, obj, lab, ks):
    """Per-query loops: the definitions of the module doc, spelled out."""
    sim = emb @ emb.T
    out = {}
    for rel, key in (("object", obj), ("class", lab)):
        hits = {k: [] for k in ks}
        precs = {k: [] for k in ks}
        aps = []
        for q in range(len(emb)):
            order = [i for i in np.argsort(-sim[q], kind="stable") if i != q]
            r = np.array([key[i] == key[q] for i in order], dtype=float)
            if r.sum() == 0:
                continue
            aps.append(sum(r[i] * r[: i + 1].sum() / (i + 1) for i in range(len(r))) / r.sum())
            for k in ks:
                hits[k].append(float(r[:k].sum() > 0))
                precs[k].append(r[:k].sum() / k)
        out[rel] = {"mAP": np.mean(aps), **{f"recall@{k}": np.mean(hits[k]) for k in ks},
                    **{f"precision@{k}": np.mean(precs[k]) for k in ks}}
    return out


def test_known_rankings():
    ang = np.array([0.0, 0.1, 1.0, 1.1, 2.0, 2.1])
    emb = np.stack([np.cos(ang), np.sin(ang)], 1)
    obj = np.array([0, 0, 1, 1, 2, 2])  # each point's nearest other point is its object twin
    lab = np.array([0, 0, 0, 0, 1, 1])
    m = metrics(emb, obj, lab)
    assert m["object"]["recall@1"] == 1.0 and m["object"]["mAP"] == 1.0 and m["object"]["queries"] == 6
    assert m["class"]["recall@1"] == 1.0 and m["class"]["precision@2"] == pytest.approx(0.75)  # 1, 1, 1, .5, .5, .5
    obj2 = np.array([0, 1, 1, 2, 2, 0])  # twins apart: no nearest neighbour is a twin; 1-2 and 3-4 are second
    m2 = metrics(emb, obj2, lab)
    assert m2["object"]["recall@1"] == 0.0 and m2["object"]["recall@2"] == pytest.approx(4 / 6)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_the_per_query_reference(seed):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(40, 5))
    obj = rng.integers(0, 15, 40)
    lab = obj % 4
    m = retrieval_metrics(emb, emb, query_rows=np.arange(40), bank_rows=np.arange(40), query_objects=obj,
                          bank_objects=obj, query_labels=lab, bank_labels=lab, ks=(1, 3, 10), chunk=7)
    ref = reference(emb, obj, lab, (1, 3, 10))
    for rel in ("object", "class"):
        for key, v in ref[rel].items():
            assert m[rel][key] == pytest.approx(v, abs=1e-6), (rel, key)


def test_the_query_itself_is_never_an_answer():
    emb = np.eye(3)  # every item is orthogonal to the others and identical to itself
    m = metrics(emb, np.array([0, 1, 2]), np.array([0, 0, 1]))
    assert m["object"]["queries"] == 0 and m["object"]["skipped"] == 3 and m["object"]["recall@1"] is None
    assert m["class"]["queries"] == 2  # item 2 has no other of its class


def test_whitening_fitted_on_the_bank_spreads_a_cone():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8)) * np.array([5, 1, 1, 1, 0.1, 0.1, 1, 1]) + 10.0  # a narrow cone far from 0
    assert median_random_cosine(x) > 0.95
    w = postprocess(x, "whiten")(x)
    assert abs(median_random_cosine(w)) < 0.1
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, rtol=1e-5)
    z = (x - x.mean(0)) @ postprocess(x, "whiten").proj
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(8), atol=1e-6)


def test_retrieval_eval_command(tmp_path, capsys):
    from _train_helpers import SPEC, tiny_store
    from ssl_ws.cli import main
    from ssl_ws.models import build_encoder
    from ssl_ws.models.export import EmbeddingModel, save_encoder
    from ssl_ws.models.normalize import WeightNormalizer

    store = tiny_store(tmp_path / "st", n_obj=20, views=2)
    enc = build_encoder("dwsnet", SPEC, hidden=4, out_dim=8, num_heads=2)
    ckpt = str(tmp_path / "enc.pt")
    save_encoder(EmbeddingModel(enc, WeightNormalizer.identity(SPEC), SPEC, enc.config).eval(), ckpt)
    out = tmp_path / "r.json"
    assert main(["retrieval-eval", ckpt, store, "--quiet", "--out", str(out), "--post", "l2,center"]) == 0
    res = json.load(open(out))["results"]
    assert [(r["features"], r["post"]) for r in res["rows"]][:2] == [("encoder", "l2"), ("encoder", "center")]
    assert len(res["rows"]) == 8 and res["queries"] == 8  # 4 test objects x 2 fits
    assert all(r["object"]["queries"] == 8 for r in res["rows"])
    assert "object R@1" in capsys.readouterr().out
    assert main(["retrieval-eval", ckpt, store, "--post", "sharpen"]) == 2
    png = tmp_path / "r.png"
    assert main(["retrieval-eval", ckpt, store, "--quiet", "--features", "encoder", "--out", str(out),
                 "--png", str(png), "--png-queries", "3", "--png-k", "4"]) == 0
    pic = json.load(open(out))["results"]["picture"]
    assert len(pic["queries"]) == 3 and all(len(q["other_fit_ranks"]) == 1 for q in pic["queries"])  # 2 fits each
    from PIL import Image

    assert Image.open(png).size[1] > 3 * 60  # three rows stacked
    assert main(["retrieval-eval", ckpt, store, "--png", str(tmp_path / "missing" / "r.png")]) == 2
