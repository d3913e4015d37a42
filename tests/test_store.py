import json

import numpy as np
import pytest
import torch

from ssl_ws import INRSpec, SslWsError
from ssl_ws.data import load_store, make_splits, write_store


def _store_kwargs(spec, n_obj=10, views=3, seed=0):
    rng = np.random.default_rng(seed)
    obj = np.repeat(np.arange(n_obj), views)
    view = np.tile(np.arange(views), n_obj)
    labels_obj = np.arange(n_obj) % 2
    splits = make_splits(np.arange(n_obj), labels_obj, (0.6, 0.2, 0.2), seed=1)
    return dict(
        params=rng.standard_normal((len(obj), spec.n_params)).astype(np.float32),
        labels=labels_obj[obj], object_ids=obj, view_ids=view,
        psnr=rng.uniform(30, 45, len(obj)).astype(np.float32), splits=splits,
        meta={"spec": spec, "class_names": ["a", "b"], "image_size": [8, 8], "channels": 1},
    )


def test_round_trip_memmap_rows_weights(tmp_path, spec):
    kw = _store_kwargs(spec)
    write_store(tmp_path / "s", **kw)
    st = load_store(tmp_path / "s")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted(
        ["meta.json", "params.npy", "labels.npy", "object_ids.npy", "view_ids.npy", "psnr.npy", "splits.json"])
    assert isinstance(st.params, np.memmap) and st.params.dtype == np.float32
    assert len(st) == 30 and st.spec == spec and st.class_names == ["a", "b"] and st.num_classes == 2
    assert st.image_size == (8, 8) and st.channels == 1
    np.testing.assert_array_equal(st.params, kw["params"])
    for split in ("train", "val", "test"):
        rows = st.rows(split)
        assert np.all(np.diff(rows) > 0)
        assert set(st.object_ids[rows]) == set(kw["splits"][split])
    rows = st.rows("train", max_views=2)
    assert set(st.view_ids[rows]) == {0, 1}
    ws = st.weights(rows[:5])
    torch.testing.assert_close(ws.to_flat(), torch.from_numpy(kw["params"][rows[:5]]))
    with pytest.raises(SslWsError, match="unknown split"):
        st.rows("training")
    # readable without ssl_ws
    assert json.loads((tmp_path / "s" / "meta.json").read_text())["spec"]["layer_sizes"] == [2, 32, 32, 1]


def test_refuses_existing_and_overwrites_atomically(tmp_path, spec):
    kw = _store_kwargs(spec)
    write_store(tmp_path / "s", **kw)
    with pytest.raises(SslWsError, match="already exists"):
        write_store(tmp_path / "s", **kw)
    kw2 = _store_kwargs(spec, seed=5)
    write_store(tmp_path / "s", overwrite=True, **kw2)
    np.testing.assert_array_equal(load_store(tmp_path / "s").params, kw2["params"])
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temp dirs left


def test_interrupted_write_leaves_nothing(tmp_path, spec, monkeypatch):
    kw = _store_kwargs(spec)
    calls = {"n": 0}
    real = np.save

    def failing_save(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        write_store(tmp_path / "s", **kw)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_or_incomplete_store_is_refused(tmp_path, spec):
    with pytest.raises(SslWsError, match="not found"):
        load_store(tmp_path / "nothing")
    write_store(tmp_path / "s", **_store_kwargs(spec))
    (tmp_path / "s" / "psnr.npy").unlink()
    with pytest.raises(SslWsError, match="psnr.npy is missing"):
        load_store(tmp_path / "s")
    write_store(tmp_path / "t", **_store_kwargs(spec))
    p = tmp_path / "t" / "params.npy"
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(SslWsError, match="params.npy"):
        load_store(tmp_path / "t")
    write_store(tmp_path / "u", **_store_kwargs(spec))
    (tmp_path / "u" / "meta.json").write_text("{not json")
    with pytest.raises(SslWsError, match="corrupt"):
        load_store(tmp_path / "u")


def test_write_refuses_nan_and_bad_splits(tmp_path, spec):
    kw = _store_kwargs(spec)
    kw["params"][3, 7] = np.nan
    with pytest.raises(SslWsError, match="non-finite"):
        write_store(tmp_path / "s", **kw)
    kw = _store_kwargs(spec)
    kw["splits"]["test"] = list(kw["splits"]["test"]) + [kw["splits"]["train"][0]]
    with pytest.raises(SslWsError, match="both split"):
        write_store(tmp_path / "s", **kw)
    assert not (tmp_path / "s").exists()


def test_splits_by_object_stratified_deterministic():
    labels = np.repeat(np.arange(5), 40)
    ids = np.arange(200) * 3 + 7
    a = make_splits(ids, labels, (0.7, 0.1, 0.2), seed=0)
    assert a == make_splits(ids, labels, (0.7, 0.1, 0.2), seed=0)
    assert a != make_splits(ids, labels, (0.7, 0.1, 0.2), seed=1)
    sets = [set(a[k]) for k in ("train", "val", "test")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert set().union(*sets) == set(ids.tolist())
    lab = dict(zip(ids.tolist(), labels.tolist()))
    for k, n in (("train", 28), ("val", 4), ("test", 8)):
        assert np.bincount([lab[o] for o in a[k]], minlength=5).tolist() == [n] * 5
    c = make_splits(ids, labels, (100, 20, 30), seed=0)
    assert [len(c[k]) for k in ("train", "val", "test")] == [100, 20, 30]
    with pytest.raises(SslWsError):
        make_splits(ids, labels, (300, 20, 30))


def test_num_classes_without_class_names_is_the_largest_label_plus_one(tmp_path, spec):
    kw = _store_kwargs(spec)
    kw["meta"] = {k: v for k, v in kw["meta"].items() if k != "class_names"}
    kw["labels"] = kw["labels"] * 3  # labels 0 and 3: four classes, one of them empty
    write_store(tmp_path / "s", **kw)
    assert load_store(tmp_path / "s").num_classes == 4


def test_a_batch_is_a_pure_function_of_seed_epoch_and_index():
    """The sampler draws each epoch's order once; any batch asked in any order is the one a fresh sampler gives."""
    from ssl_ws.data.dataset import BatchIndexSampler

    rows, objects = np.arange(40, dtype=np.int64), np.repeat(np.arange(20), 2)

    def fresh(unit):
        return BatchIndexSampler(rows, 4, unit=unit, object_ids=objects, seed=3)

    for unit in ("rows", "pairs"):
        s = fresh(unit)
        for epoch, index in [(0, 1), (2, 3), (0, 1), (1, 0), (2, 3), (0, 4)]:
            got, want = s.batch(epoch, index), fresh(unit).batch(epoch, index)
            assert all(np.array_equal(got[k], want[k]) for k in want if k.startswith("rows"))
        assert not np.array_equal(s.batch(0, 0)["rows"], s.batch(1, 0)["rows"])  # epochs are reshuffled
