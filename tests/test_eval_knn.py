"""Weighted kNN (faiss vs torch), few-label sampling and the linear probe, on synthetic embeddings."""

import numpy as np
import pytest
import torch

from ssl_ws.errors import SslWsError
from ssl_ws.eval.few_labels import parse_labels_per_class, sample_per_class
from ssl_ws.eval.knn import (
    knn_evaluate,
    knn_predict,
    knn_predict_many,
    l2_normalize,
    search_faiss,
    search_torch,
    weighted_vote,
)
from ssl_ws.eval.linear_probe import linear_probe


def clusters(n, dim=16, classes=4, spread=1.0, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, dim)) * 3
    y = rng.integers(0, classes, n)
    x = centers[y] + spread * rng.standard_normal((n, dim))
    return x.astype(np.float32), y.astype(np.int64)


def test_faiss_and_torch_agree():
    x, y = clusters(1200, spread=4.0)  # overlapping classes: votes are not trivial
    tr, ytr, q = x[:1000], y[:1000], x[1000:]
    s_f, i_f = search_faiss(l2_normalize(tr), l2_normalize(q), 25)
    s_t, i_t = search_torch(l2_normalize(tr), l2_normalize(q), 25)
    np.testing.assert_allclose(s_f, s_t, atol=1e-5)
    assert np.mean(i_f == i_t) > 0.99  # only exact ties may swap
    for k, t in [(1, 0.07), (20, 0.07), (200, 0.1)]:
        pf = knn_predict(tr, ytr, q, k=k, temperature=t, backend="faiss")
        pt = knn_predict(tr, ytr, q, k=k, temperature=t, backend="torch")
        np.testing.assert_array_equal(pf, pt)
    # the vote is not the same as a plain majority everywhere: weights matter
    acc = np.mean(pf == y[1000:])
    assert 0.3 < acc < 1.0


def test_weighted_vote_matches_definition():
    rng = np.random.default_rng(1)
    n_q, k, c, t = 7, 5, 3, 0.1
    sims = np.sort(rng.uniform(-1, 1, (n_q, k)), axis=1)[:, ::-1]
    idx = rng.integers(0, 10, (n_q, k))
    labels = rng.integers(0, c, 10)
    scores = weighted_vote(sims, idx, labels, c, t)
    for i in range(n_q):
        expect = np.zeros(c)
        for j in range(k):
            expect[labels[idx[i, j]]] += np.exp(sims[i, j] / t)
        # scores are scaled per query by exp(-max/T): compare normalized
        np.testing.assert_allclose(scores[i] / scores[i].sum(), expect / expect.sum(), rtol=1e-10)
    # padding slots (-1) are ignored
    idx2 = idx.copy()
    idx2[:, -1] = -1
    s2 = weighted_vote(sims, idx2, labels, c, t)
    s3 = weighted_vote(sims[:, :-1], idx[:, :-1], labels, c, t)
    np.testing.assert_allclose(s2, s3)


def test_temperature_changes_the_vote():
    # one very close neighbour of class 0 against two farther ones of class 1
    tr = np.array([[1.0, 0.0], [0.6, 0.8], [0.6, -0.8]], np.float32)
    ytr = np.array([0, 1, 1])
    q = np.array([[1.0, 0.0]], np.float32)
    assert knn_predict(tr, ytr, q, k=3, temperature=0.07)[0] == 0
    assert knn_predict(tr, ytr, q, k=3, temperature=100.0)[0] == 1


def test_knn_evaluate_settings_and_k_cap():
    x, y = clusters(300, spread=0.3)
    res = knn_evaluate(x[:50], y[:50], x[50:], y[50:], settings=[(20, 0.07), (200, 0.1)], num_classes=4)
    assert [s["k"] for s in res["settings"]] == [20, 200]
    assert res["settings"][1]["k_used"] == 50  # capped at the memory size
    assert res["settings"][0]["top1"] > 0.95
    assert len(res["settings"][0]["per_class"]) == 4
    preds, info = knn_predict_many(x[:50], y[:50], x[50:], [(5, 0.1)], backend="torch")
    assert info["backend"] == "torch"
    with pytest.raises(SslWsError):
        knn_predict(x[:0], y[:0], x[:3])
    with pytest.raises(SslWsError):
        knn_predict(x, y, x[:3], temperature=0.0)
    with pytest.raises(SslWsError):
        knn_predict(x, y, x[:3], backend="annoy")


def test_torch_fallback_when_faiss_missing(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_faiss(name, *a, **k):
        if name == "faiss":
            raise ImportError("no faiss")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    x, y = clusters(200, spread=0.3)
    _, info = knn_predict_many(x[:150], y[:150], x[150:], [(10, 0.07)])
    assert info["backend"] == "torch"
    with pytest.raises(SslWsError, match="faiss"):
        knn_predict(x[:150], y[:150], x[150:], backend="faiss")


def test_few_labels_by_object():
    # 5 classes x 30 objects x 3 views, rows shuffled
    objects = np.repeat(np.arange(150), 3)
    labels = objects % 5
    perm = np.random.default_rng(0).permutation(objects.size)
    objects, labels = objects[perm], labels[perm]
    pos = sample_per_class(labels, objects, 4, seed=3)
    chosen = np.unique(objects[pos])
    assert np.bincount(labels[pos], minlength=5).tolist() == [12] * 5  # 4 objects x 3 views each
    assert np.all(np.bincount(objects[pos])[chosen] == 3)
    # deterministic, independent of row order, seed-dependent
    np.testing.assert_array_equal(pos, sample_per_class(labels, objects, 4, seed=3))
    rev = sample_per_class(labels[::-1], objects[::-1], 4, seed=3)
    np.testing.assert_array_equal(np.sort(np.unique(objects[::-1][rev])), chosen)
    other = sample_per_class(labels, objects, 4, seed=4)
    assert not np.array_equal(np.unique(objects[other]), chosen)
    # as many as the largest class keeps everything; more is refused (issue 14); None keeps everything
    assert sample_per_class(labels, objects, 30).size == objects.size
    with pytest.raises(SslWsError, match="more than any class"):
        sample_per_class(labels, objects, 100)
    assert sample_per_class(labels, objects, None).size == objects.size
    assert parse_labels_per_class("all") is None and parse_labels_per_class("10") == 10
    for bad in ("0", "-1", "ten"):
        with pytest.raises(SslWsError):
            parse_labels_per_class(bad)
    with pytest.raises(SslWsError):
        sample_per_class(np.array([0, 1]), np.array([7, 7]), 1)


def test_linear_probe_above_chance_and_chooses_c():
    x, y = clusters(600, dim=8, classes=3, spread=1.5, seed=2)
    res = linear_probe(x[:300], y[:300], x[300:400], y[300:400], x[400:], y[400:], cs=(0.001, 1.0, 100.0))
    assert res["top1"] > 0.8  # chance is 1/3
    assert res["best_C"] in (0.001, 1.0, 100.0)
    assert res["val_top1"][repr(res["best_C"])] == max(res["val_top1"].values())
    assert len(res["per_class"]) == 3
    # random labels: no better than chance-ish
    rnd = np.random.default_rng(0).integers(0, 3, 600)
    res2 = linear_probe(x[:300], rnd[:300], x[300:400], rnd[300:400], x[400:], rnd[400:], cs=(1.0,))
    assert res2["top1"] < 0.6
    with pytest.raises(SslWsError, match="validation"):
        linear_probe(x[:300], y[:300], None, None, x[400:], y[400:], cs=(0.1, 1.0))
    with pytest.raises(SslWsError):
        linear_probe(x[:300], np.zeros(300, np.int64), None, None, x[400:], y[400:], cs=(1.0,))


def test_online_evaluation_uses_the_package_classifiers():
    """The training-time kNN / probe are the evaluators' own (one implementation): same
    predictions as ssl-ws knn's knn_predict on separable toy embeddings."""
    import torch

    from ssl_ws.eval.knn import knn_predict
    from ssl_ws.train.online_eval import knn_accuracy, probe_accuracy

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 5
    y = rng.integers(0, 3, 120)
    z = centres[y] + rng.normal(size=(120, 8))
    bank, q = torch.tensor(z[:80], dtype=torch.float32), torch.tensor(z[80:], dtype=torch.float32)
    acc = knn_accuracy(bank, torch.tensor(y[:80]), q, torch.tensor(y[80:]), k=5, temperature=0.1, num_classes=3)
    pred = knn_predict(z[:80].astype(np.float32), y[:80], z[80:].astype(np.float32), k=5, temperature=0.1, num_classes=3)
    assert acc == float(np.mean(pred == y[80:])) == 1.0
    assert probe_accuracy(z[:80], y[:80], z[80:], y[80:]) == 1.0


def test_labels_per_class_above_every_class_is_refused():
    labels = np.array([0, 0, 1, 1, 1])
    objects = np.arange(5)
    assert len(sample_per_class(labels, objects, 3)) == 5  # class 0 keeps its 2, class 1 gives 3
    with pytest.raises(SslWsError, match="more than any class"):
        sample_per_class(labels, objects, 4)
