"""Fuzz-style: corrupted stores, index folders and encoders given to every command that reads them.

Each case copies a clean tiny store (or index, or encoder), corrupts one thing (truncation,
dtype, shape, NaN/Inf, out-of-range ids or labels, missing keys, malformed JSON, a poisoned
pickle) and runs the commands in-process through ``ssl_ws.cli.main``. The only acceptable
outcomes: exit status 2 with exactly one ``error:`` line on stderr (no traceback), or
exit 0 with the same result as on the clean input. Issue 14's table rows 1-4, 7-10 are
here as named cases. The whole module runs in a few seconds (stores of 72 tiny INRs;
nothing trains: train/pretrain are refused while loading the store).
"""

import json
import os
import shutil
import traceback

import numpy as np
import pytest
import torch

from ssl_ws import INRSpec, WeightNormalizer
from ssl_ws.cli import main
from ssl_ws.data import load_store, write_store

SPEC = INRSpec((2, 8, 8, 1))
CLASSES = ["small", "medium", "large"]


def _store(path, spec=SPEC, seed=0):
    """36 objects x 2 views; classes differ in weight scale; 18/9/9 objects train/val/test."""
    rng = np.random.default_rng(seed)
    n_obj = 36
    obj_label = np.arange(n_obj) % 3
    obj = np.repeat(np.arange(n_obj), 2)
    labels = obj_label[obj]
    params = (rng.uniform(-1, 1, (len(obj), spec.n_params)) * 0.3 * np.array([0.3, 1.0, 3.0])[labels][:, None])
    by = [np.flatnonzero(obj_label == c) for c in range(3)]
    splits = {"train": sum((o[:6].tolist() for o in by), []), "val": sum((o[6:9].tolist() for o in by), []),
              "test": sum((o[9:].tolist() for o in by), [])}
    write_store(path, params=params.astype(np.float32), labels=labels, object_ids=obj, view_ids=np.tile([0, 1], n_obj),
                psnr=np.full(len(obj), 30.0, np.float32), splits=splits,
                meta={"spec": spec, "class_names": CLASSES, "image_size": [8, 8], "channels": 1})
    return str(path)


def _encoder(path, spec=SPEC, seed=0):
    from ssl_ws.models import build_encoder
    from ssl_ws.models.export import EmbeddingModel, save_encoder

    torch.manual_seed(seed)
    enc = build_encoder("dwsnet", spec, hidden=8, n_layers=2, out_dim=16, num_heads=2)
    cfg = dict(getattr(enc, "config", {}) or {}, name="dwsnet")
    save_encoder(EmbeddingModel(enc, WeightNormalizer.identity(spec), spec, cfg), path)
    return str(path)


def run_cli(capsys, *args):
    """(exit status, stdout, stderr) of ``ssl-ws ARGS``; any exception escaping main is a failure."""
    capsys.readouterr()
    try:
        rc = main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        rc = exc.code
    except BaseException:  # noqa: BLE001 - this is what the test is about
        pytest.fail(f"ssl-ws {' '.join(map(str, args))} raised:\n{traceback.format_exc()}")
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line(rc, err, args, want=None, progress_before=False):
    """Exit 2, one ``error:`` line and nothing else on stderr (``progress_before``: the
    command's progress lines may come first; the error line is still the last and only one)."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if progress_before:
        lines = [ln for ln in lines if ln.startswith("error:")] if lines and lines[-1].startswith("error: ") else lines
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, rc, err)
    assert "Traceback" not in err
    if want:
        assert want in lines[0], (args, lines[0])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("corrupt")
    store = _store(d / "store")
    enc = _encoder(d / "encoder.pt")
    assert main(["index", enc, store, "--out", str(d / "index"), "--quiet"]) == 0
    assert main(["knn", enc, store, "--quiet", "--out", str(d / "knn.json")]) == 0
    knn = json.loads((d / "knn.json").read_text())
    return {"dir": d, "store": store, "enc": enc, "index": str(d / "index"), "top1": knn["results"]["top1"]
            if "results" in knn else knn["top1"]}


def _top1(path):
    r = json.loads(open(path).read())
    return r["results"]["top1"] if "results" in r else r["top1"]


# ------------------------------------------------------------------ store corruptions
def _npy(store, name, fn):
    p = os.path.join(store, name)
    a = np.load(p)
    a = fn(a)
    np.save(p, a)


def _set(name, rows, value, dtype=None):
    def fn(store):
        def f(a):
            a = a.copy()
            a[rows] = value
            return a if dtype is None else a.astype(dtype)
        _npy(store, name, f)
    return fn


def _splits(fn):
    def edit(store):
        p = os.path.join(store, "splits.json")
        s = json.load(open(p))
        json.dump(fn(s), open(p, "w"))
    return edit


def _meta(fn):
    def edit(store):
        p = os.path.join(store, "meta.json")
        m = json.load(open(p))
        out = fn(m)
        open(p, "w").write(out if isinstance(out, str) else json.dumps(out))
    return edit


def _truncate(name, keep):
    def edit(store):
        p = os.path.join(store, name)
        data = open(p, "rb").read()
        open(p, "wb").write(data[: keep if keep >= 0 else len(data) + keep])
    return edit


def _remove(name):
    return lambda store: os.remove(os.path.join(store, name))


STORE_CASES = {
    # issue 14 table, rows 1-4 and 7
    "nan_params": (_set("params.npy", [3, 10, 40], np.nan), "params.npy row 3"),
    "inf_params": (_set("params.npy", (5, 2), np.inf), "params.npy row 5"),
    "test_leak": (_splits(lambda s: dict(s, test=s["test"] + s["train"][:5])), "in both split"),
    "label_42": (_set("labels.npy", 7, 42), "labels.npy row 7 has label 42"),
    "negative_label": (_set("labels.npy", 4, -1), "labels.npy row 4 has label -1"),
    "split_id_5000": (_splits(lambda s: dict(s, test=s["test"] + [5000])), "lists object 5000"),
    "split_id_99999": (_splits(lambda s: dict(s, val=s["val"] + [99999])), "lists object 99999"),
    "split_id_minus1": (_splits(lambda s: dict(s, train=s["train"] + [-1])), "lists object -1"),
    # more of the same kind
    "split_dropped_object": (_splits(lambda s: dict(s, test=s["test"][1:])), "in no split"),
    "split_twice": (_splits(lambda s: dict(s, val=s["val"] + s["val"][:1])), "listed twice"),
    "split_float_id": (_splits(lambda s: dict(s, test=s["test"] + [1.5])), "1.5"),
    "split_string_id": (_splits(lambda s: dict(s, test=["x"])), "'x'"),
    "split_not_list": (_splits(lambda s: dict(s, test=3)), "list"),
    "splits_not_dict": (_splits(lambda s: [1, 2]), "splits.json"),
    "splits_malformed": (_truncate("splits.json", 5), "splits.json"),
    "splits_missing": (_remove("splits.json"), "splits.json is missing"),
    "labels_float": (_set("labels.npy", 0, 0, dtype=np.float64), "labels.npy"),
    "labels_2d": (lambda st: _npy(st, "labels.npy", lambda a: a[:, None]), "labels.npy"),
    "labels_short": (lambda st: _npy(st, "labels.npy", lambda a: a[:-1]), "labels.npy"),
    "params_float64": (lambda st: _npy(st, "params.npy", lambda a: a.astype(np.float64)), "params.npy"),
    "params_columns": (lambda st: _npy(st, "params.npy", lambda a: a[:, :-1]), "columns"),
    "params_truncated": (_truncate("params.npy", 1000), "params.npy"),
    "params_empty_file": (_truncate("params.npy", 0), "params.npy"),
    "params_missing": (_remove("params.npy"), "params.npy is missing"),
    "psnr_short": (lambda st: _npy(st, "psnr.npy", lambda a: a[:3]), "psnr.npy"),
    "object_id_negative": (_set("object_ids.npy", 0, -3), "negative object id"),
    "duplicate_view": (_set("view_ids.npy", 1, 0), "both object 0, view 0"),
    "views_disagree_on_label": (_set("labels.npy", 1, 2), "labels.npy rows 0 and 1 are views of object 0"),
    "meta_malformed": (_meta(lambda m: "{not json"), "meta.json"),
    "meta_no_spec": (_meta(lambda m: {k: v for k, v in m.items() if k != "spec"}), "spec"),
    "meta_bad_spec": (_meta(lambda m: dict(m, spec={"layer_sizes": "abc"})), "spec"),
    "meta_class_names_str": (_meta(lambda m: dict(m, class_names="abc")), "class_names"),
    "meta_image_size": (_meta(lambda m: dict(m, image_size=[8])), "image_size"),
    "meta_num_rows": (_meta(lambda m: dict(m, num_rows=5)), "rows"),
    "meta_version": (_meta(lambda m: dict(m, version=99)), "version"),
    "meta_version_str": (_meta(lambda m: dict(m, version="x")), "version"),
    "meta_not_store": (_meta(lambda m: dict(m, format="other")), "not an ssl_ws INR store"),
    "meta_missing": (_remove("meta.json"), "meta.json is missing"),
}


def _commands(b, store, tmp):
    out = tmp / "out"
    return [
        ["info", store],
        ["info", store, "--check"],
        ["knn", b["enc"], store, "--quiet", "--out", out / "knn.json"],
        ["linear-probe", b["enc"], store, "--quiet", "--C", "1", "--out", out / "lp.json"],
        ["embed", b["enc"], store, "--quiet", "--out", out / "emb"],
        ["index", b["enc"], store, "--quiet", "--out", out / "idx"],
        ["baselines", store, "--methods", "raw-lr"],
        ["export-store", store, "--format", "dwsnets", "--out", out / "dws"],
        ["show-augment", store, "--out", tmp / "g.png"],
        ["pretrain", "data.store=" + str(store), f"output_dir={out}/runs", "trainer.max_steps=1"],
        ["train", "data.store=" + str(store), f"output_dir={out}/runs", "trainer.max_steps=1"],
    ]


@pytest.mark.parametrize("case", sorted(STORE_CASES))
def test_corrupt_store_is_one_line_everywhere(base, tmp_path, capsys, case):
    corrupt, want = STORE_CASES[case]
    store = tmp_path / "store"
    shutil.copytree(base["store"], store)
    corrupt(str(store))
    for args in _commands(base, store, tmp_path):
        rc, _, err = run_cli(capsys, *args)
        assert_one_line(rc, err, args, want)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.json"))  # no results written
    assert not (tmp_path / "out" / "runs").exists()  # no run directory of a run that never started


def test_pretrain_refused_by_its_batch_check_leaves_no_run_directory(base, tmp_path, capsys):
    args = ["pretrain", f"data.store={base['store']}", f"output_dir={tmp_path}/runs", "data.batch_size=100000",
            "encoder.hidden=4", "encoder.out_dim=8", "encoder.num_heads=2", "trainer.accelerator=cpu"]
    rc, _, err = run_cli(capsys, *args)
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]  # (an info line on positives comes first)
    assert rc == 2 and len(errors) == 1 and "fewer than one batch" in errors[0] and "Traceback" not in err, err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_simclr_with_identical_views_is_refused(base, tmp_path, capsys):
    """Two 'augmentations' of one fit without augmentation are one view twice: nothing to learn."""
    args = ["pretrain", f"data.store={base['store']}", f"output_dir={tmp_path}/runs", "ssl.positives=same_fit",
            "augment.preset=none", "encoder.hidden=4", "encoder.out_dim=8", "encoder.num_heads=2",
            "trainer.accelerator=cpu", "trainer.max_steps=1"]
    rc, _, err = run_cli(capsys, *args)
    assert_one_line(rc, err, args, "identical")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_corrupt_store_is_refused_by_load_store_and_readable_unchecked(base, tmp_path):
    from ssl_ws import SslWsError

    store = tmp_path / "store"
    shutil.copytree(base["store"], store)
    STORE_CASES["nan_params"][0](str(store))
    with pytest.raises(SslWsError, match=r"^corrupt store .*params\.npy row 3 \(object 1, view 1\)"):
        load_store(store)
    assert np.isnan(load_store(store, check="none").params[3]).any()  # to inspect or repair it


@pytest.mark.parametrize("seed", range(6))
def test_random_truncation_and_byte_flips(base, tmp_path, capsys, seed):
    """Any file cut at a random length is refused; random bytes flipped anywhere give exit 2
    with one line, or exit 0 (a flip inside the data that leaves a valid store)."""
    rng = np.random.default_rng(seed)
    from ssl_ws.data.store import STORE_FILES

    names = sorted(STORE_FILES)  # not checks.json: a cache, whose damage only costs a rescan
    for trial in range(4):
        store = tmp_path / f"s{trial}"
        shutil.copytree(base["store"], store)
        name = names[rng.integers(len(names))]
        p = store / name
        data = bytearray(p.read_bytes())
        truncate = trial % 2 == 0
        if truncate:
            data = data[: int(rng.integers(0, len(data)))]
        else:
            for i in rng.integers(0, len(data), size=3):
                data[i] = int(rng.integers(256))
        p.write_bytes(bytes(data))
        for args in (["info", store], ["knn", base["enc"], store, "--quiet", "--out", tmp_path / f"k{trial}.json"]):
            rc, _, err = run_cli(capsys, *args)
            if truncate or rc != 0:
                assert_one_line(rc, err, args + [f"({name})"])


def test_benign_changes_give_the_clean_result(base, tmp_path, capsys):
    """A NaN PSNR (imported INRs have none) and an extra empty split are allowed: same kNN numbers."""
    store = tmp_path / "store"
    shutil.copytree(base["store"], store)
    _set("psnr.npy", [0, 1], np.nan)(str(store))
    _splits(lambda s: dict(s, extra=[]))(str(store))
    rc, _, err = run_cli(capsys, "knn", base["enc"], store, "--quiet", "--out", tmp_path / "k.json")
    assert rc == 0, err
    assert _top1(tmp_path / "k.json") == base["top1"]


def test_checks_are_cached_until_a_file_changes(base, tmp_path):
    import time

    from ssl_ws import SslWsError
    from ssl_ws.data import check_store

    store = tmp_path / "store"
    shutil.copytree(base["store"], store)
    (store / "checks.json").unlink(missing_ok=True)
    old = time.time_ns() - 60 * 10**9
    for f in store.iterdir():
        os.utime(f, ns=(old, old))
    st = load_store(store, check="none")
    first = check_store(st)
    assert not first["cached"] and first["record"] == str(store / "checks.json")
    assert check_store(st)["cached"]
    assert not check_store(st, use_cache=False)["cached"]  # what `info --check` does
    (store / "checks.json").write_text("{garbage")  # a damaged record only costs a rescan
    assert not check_store(st)["cached"] and check_store(st)["cached"]
    _set("params.npy", 0, np.nan)(str(store))  # a rewrite changes mtime (and inode or size): scanned again
    with pytest.raises(SslWsError, match="params.npy row 0"):
        load_store(store)



def test_an_edit_whose_mtime_was_set_back_is_scanned_again(base, tmp_path):
    """Bytes changed in place, then the file's mtime restored (``os.utime``): its ctime moved,
    so the cached check no longer applies."""
    import time

    from ssl_ws import SslWsError
    from ssl_ws.data import check_store

    store = tmp_path / "store"
    shutil.copytree(base["store"], store)
    old = time.time_ns() - 60 * 10**9
    for f in store.iterdir():
        os.utime(f, ns=(old, old))
    time.sleep(0.01)
    assert not check_store(load_store(store, check="none"))["cached"]
    assert check_store(load_store(store, check="none"))["cached"]
    p = store / "params.npy"
    st = os.stat(p)
    a = np.load(p, mmap_mode="r+")
    a[3, :] = np.inf
    a.flush()
    del a
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(p).st_mtime_ns == st.st_mtime_ns and os.stat(p).st_size == st.st_size
    with pytest.raises(SslWsError, match="params.npy row 3"):
        load_store(store)


def test_fresh_store_keeps_its_file_list(tmp_path):
    """A store loaded right after it was written gets no checks.json (its mtimes are too recent
    to be trusted): the layout of a freshly written store is unchanged."""
    store = _store(tmp_path / "s")
    load_store(store)
    assert "checks.json" not in os.listdir(store)


# ------------------------------------------------------------------ encoder corruptions
class _Poison:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('SSL_WS_POISON_MARK', '/tmp/ssl_ws_poisoned')}",))


@pytest.mark.parametrize("case", ["truncated", "garbage", "empty", "poison", "state_dict", "other_arch"])
def test_corrupt_encoder_is_one_line(base, tmp_path, capsys, monkeypatch, case):
    enc = tmp_path / "encoder.pt"
    mark = tmp_path / "poisoned"
    monkeypatch.setenv("SSL_WS_POISON_MARK", str(mark))
    if case == "truncated":
        enc.write_bytes(open(base["enc"], "rb").read()[:500])
    elif case == "garbage":
        enc.write_bytes(bytes(range(256)) * 8)
    elif case == "empty":
        enc.write_bytes(b"")
    elif case == "poison":
        torch.save({"model": _Poison()}, enc)  # torch.load without weights_only=True would run `touch`
    elif case == "state_dict":
        torch.save({"w": torch.zeros(3)}, enc)
    else:  # an encoder of another INR architecture
        _encoder(enc, spec=INRSpec((2, 16, 1)))
    want = "mismatch" if case == "other_arch" else None
    for args in (["knn", enc, base["store"], "--quiet", "--out", tmp_path / "k.json"],
                 ["embed", enc, base["store"], "--quiet", "--out", tmp_path / "emb"],
                 ["linear-probe", enc, base["store"], "--quiet", "--out", tmp_path / "lp.json"],
                 ["finetune", enc, base["store"], "trainer.max_epochs=1"],
                 ["index", enc, base["store"], "--quiet", "--out", tmp_path / "idx"],
                 ["query", base["index"], "--id", "3", "--ckpt", enc]):
        rc, _, err = run_cli(capsys, *args)
        assert_one_line(rc, err, args, want)
    if case not in ("other_arch",):
        rc, _, err = run_cli(capsys, "export", enc, "--out", tmp_path / "x.pt")
        assert_one_line(rc, err, ["export", case])
    assert not mark.exists()  # nothing in the file was executed


def test_query_with_another_encoder_is_refused(base, tmp_path, capsys):
    other = _encoder(tmp_path / "other.pt", seed=1)
    rc, _, err = run_cli(capsys, "query", base["index"], "--id", "3", "--ckpt", other)
    assert_one_line(rc, err, "query other encoder", "encoder mismatch")


# ------------------------------------------------------------------ index corruptions
def _ix_npy(name, fn):
    return lambda d: _npy(d, name, fn)


def _ix_json(fn):
    def edit(d):
        p = os.path.join(d, "index.json")
        out = fn(json.load(open(p)))
        open(p, "w").write(out if isinstance(out, str) else json.dumps(out))
    return edit


INDEX_CASES = {
    # issue 14 table, rows 9-10
    "faiss_truncated_300": (_truncate("index.faiss", 300), "index.faiss"),
    "faiss_truncated_10": (_truncate("index.faiss", 10), "index.faiss"),
    "faiss_truncated_end": (_truncate("index.faiss", -7), "index.faiss"),
    "faiss_empty": (_truncate("index.faiss", 0), "index.faiss"),
    "json_malformed": (_truncate("index.json", 40), "index.json"),
    "json_not_dict": (_ix_json(lambda i: "[1, 2]"), "index.json"),
    "json_version_str": (_ix_json(lambda i: dict(i, version="x")), "version"),
    "json_encoder_str": (_ix_json(lambda i: dict(i, encoder="abc")), "encoder"),
    "json_store_rows_str": (_ix_json(lambda i: dict(i, store=dict(i["store"], rows="many"))), "rows"),
    "json_bad_index_params": (lambda d: (_ix_json(lambda i: dict(i, index={"kind": "hnsw", "M": -3}))(d),
                                         os.remove(os.path.join(d, "index.faiss"))), "hnsw-m"),
    "emb_truncated": (_truncate("embeddings.npy", 200), "embeddings.npy"),
    "emb_float64": (_ix_npy("embeddings.npy", lambda a: a.astype(np.float64)), "embeddings.npy"),
    "emb_1d": (_ix_npy("embeddings.npy", lambda a: a.ravel()), "embeddings.npy"),
    "emb_nan": (_ix_npy("embeddings.npy", lambda a: np.where(np.arange(len(a))[:, None] == 4, np.nan, a)), "row 4"),
    "rows_short": (_ix_npy("rows.npy", lambda a: a[:-2]), "rows.npy"),
    "rows_out_of_range": (_ix_npy("rows.npy", lambda a: np.where(np.arange(len(a)) == 2, 10**6, a)), "rows.npy"),
    "rows_missing": (_remove("rows.npy"), "rows.npy"),
    "labels_float": (_ix_npy("labels.npy", lambda a: a.astype(np.float32)), "labels.npy"),
    # bytes changed in place, same size: no shape check sees it, the recorded SHA-256 does
    "faiss_bytes_flipped": (lambda d: _flip_bytes(os.path.join(d, "index.faiss")), "index.faiss: its content changed"),
    "emb_bytes_flipped": (lambda d: _flip_bytes(os.path.join(d, "embeddings.npy")), "embeddings.npy: its content changed"),
    "json_files_not_dict": (_ix_json(lambda i: dict(i, files=[1])), "'files'"),
}


def _flip_bytes(path, n=64):
    """Overwrite ``n`` bytes near the end of the file (its data, past any header) in place."""
    data = bytearray(open(path, "rb").read())
    for i in range(len(data) - n, len(data)):
        data[i] = (data[i] + 97) % 256
    open(path, "wb").write(bytes(data))


@pytest.mark.parametrize("case", sorted(INDEX_CASES))
def test_corrupt_index_is_one_line_in_query(base, tmp_path, capsys, case):
    corrupt, want = INDEX_CASES[case]
    idx = tmp_path / "index"
    shutil.copytree(base["index"], idx)
    corrupt(str(idx))
    for args in (["query", idx, "--id", "3", "-k", "4"], ["query", idx, "--id", "3", "-k", "4", "--png", tmp_path / "q.png"]):
        rc, _, err = run_cli(capsys, *args)
        assert_one_line(rc, err, args, want)


def test_an_index_without_digests_still_loads(base, tmp_path, capsys):
    """Indexes written before index.json recorded SHA-256s (version 1) load as they did."""
    idx = tmp_path / "index"
    shutil.copytree(base["index"], idx)
    rc, clean, _ = run_cli(capsys, "query", idx, "--id", "3", "-k", "5")
    _ix_json(lambda i: {k: v for k, v in dict(i, version=1).items() if k != "files"})(str(idx))
    rc, old, err = run_cli(capsys, "query", idx, "--id", "3", "-k", "5")
    assert rc == 0, err
    assert old.splitlines()[1:] == clean.splitlines()[1:]


def test_query_pictures_from_a_store_of_another_architecture_are_refused(base, tmp_path, capsys):
    """--store must hold the INRs the index was built from: same row count is not enough."""
    other = _store(tmp_path / "other", spec=INRSpec((2, 4, 4, 1)))
    args = ["query", base["index"], "--id", "3", "-k", "4", "--png", tmp_path / "q.png", "--store", other]
    rc, _, err = run_cli(capsys, *args)
    assert_one_line(rc, err, args, "the index was built from a store of INRs")
    assert not (tmp_path / "q.png").exists()


def test_missing_faiss_file_is_rebuilt_with_the_same_neighbours(base, tmp_path, capsys):
    idx = tmp_path / "index"
    shutil.copytree(base["index"], idx)
    rc, clean, _ = run_cli(capsys, "query", idx, "--id", "3", "-k", "5")
    assert rc == 0
    os.remove(idx / "index.faiss")
    rc, rebuilt, err = run_cli(capsys, "query", idx, "--id", "3", "-k", "5")
    assert rc == 0, err
    assert rebuilt.splitlines()[1:] == clean.splitlines()[1:]


@pytest.mark.parametrize("args", [["-k", "0"], ["-k", "-2"], ["--id", "-1"], ["--id", "100000"]])
def test_bad_query_numbers(base, capsys, args):
    argv = ["query", base["index"], "--id", "3", "-k", "4"]
    for i in range(0, len(args), 2):
        argv[argv.index(args[i]) + 1] = args[i + 1]
    rc, _, err = run_cli(capsys, *argv)
    assert_one_line(rc, err, argv)


# ------------------------------------------------------------------ other findings of issue 14
FIT = ["fit", "--source", "digits", "--limit", "12", "--steps", "2", "--workers", "1", "--chunk", "6"]


def test_second_fit_on_one_out_is_refused_and_resume_still_works(tmp_path, capsys):
    from ssl_ws.inr.partial import claim_partial

    out = tmp_path / "s"
    with claim_partial(str(out) + ".partial"):  # another writer holds it
        rc, _, err = run_cli(capsys, *FIT, "--out", out)
        assert_one_line(rc, err, "fit while claimed", "another `ssl-ws fit`")
    rc, _, err = run_cli(capsys, *FIT, "--out", out, "--max-chunks", "1")  # a run stopped midway ...
    assert rc == 3 and not out.exists()
    rc, _, err = run_cli(capsys, *FIT, "--out", out)  # ... resumes: the lock died with its holder
    assert rc == 0, err
    assert not (tmp_path / "s.partial").exists() and len(load_store(out)) == 12


def test_disk_full_during_fit_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    import ssl_ws.inr.chunked as chunked

    def full(path, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(chunked, "save_chunk", full)
    rc, _, err = run_cli(capsys, *FIT, "--out", tmp_path / "s")
    assert_one_line(rc, err, "fit disk full", "No space left on device", progress_before=True)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("bad", [["--steps", "0"], ["--steps", "-1"], ["--target-psnr", "nan"], ["--target-psnr", "inf"],
                                 ["--lr", "0"], ["--lr", "nan"], ["--w0", "-1"], ["--limit", "0"], ["--eval-views", "0"]])
def test_fit_refuses_numbers_that_fit_nothing(tmp_path, capsys, bad):
    rc, _, err = run_cli(capsys, *FIT, "--out", tmp_path / "s", *bad)
    assert_one_line(rc, err, bad, bad[0])
    assert not (tmp_path / "s").exists() and not (tmp_path / "s.partial").exists()


def test_misleading_messages_of_issue_14(base, tmp_path, capsys):
    (tmp_path / "x.npy").write_text("hello, not numpy")
    rc, _, err = run_cli(capsys, "fit", "--source", tmp_path / "x.npy", "--out", tmp_path / "f")
    assert_one_line(rc, err, "text .npy", "not a NumPy .npy file")
    rc, _, err = run_cli(capsys, "merge", base["store"], base["store"], "--out", tmp_path / "m")
    assert_one_line(rc, err, "merge S S", "given twice")
    rc, _, err = run_cli(capsys, "pretrain", "--resume", base["enc"])
    assert_one_line(rc, err, "resume a file", "a run directory's checkpoints/ folder")
    rc, _, err = run_cli(capsys, "show-augment", base["store"], "--out", tmp_path / "no" / "dir" / "g.png")
    assert_one_line(rc, err, "show-augment", "does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("bad", [["--settings", "0:0.07"], ["--settings", "5:nan"], ["--settings", "5:0"],
                                 ["--max-views", "0"], ["--labels-per-class", "-2"], ["--batch-size", "0"]])
def test_bad_knn_numbers(base, tmp_path, capsys, bad):
    rc, _, err = run_cli(capsys, "knn", base["enc"], base["store"], "--quiet", "--out", tmp_path / "k.json", *bad)
    assert_one_line(rc, err, bad)


@pytest.mark.parametrize("bad", [["--C", "nan"], ["--C", "-1"], ["--max-iter", "0"]])
def test_bad_linear_probe_numbers(base, tmp_path, capsys, bad):
    rc, _, err = run_cli(capsys, "linear-probe", base["enc"], base["store"], "--quiet", "--out", tmp_path / "l.json", *bad)
    assert_one_line(rc, err, bad)


@pytest.mark.parametrize("bad", [["--index", "ivf", "--nprobe", "-1"], ["--index", "ivf", "--nlist", "0"],
                                 ["--index", "hnsw", "--hnsw-m", "0"], ["--index", "hnsw", "--ef-search", "0"]])
def test_bad_index_numbers(base, tmp_path, capsys, bad):
    rc, _, err = run_cli(capsys, "index", base["enc"], base["store"], "--quiet", "--out", tmp_path / "i", *bad)
    assert_one_line(rc, err, bad)
    assert not (tmp_path / "i").exists()


def test_a_stopped_command_says_truthfully_what_is_left(monkeypatch, capsys):
    """Only `fit` claims to have saved finished work; a training run points at `--resume`."""
    import errno

    from ssl_ws import cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "k.json")

    def stop(args):
        raise KeyboardInterrupt

    for name, module in (("knn", "knn"), ("fit", "fit")):
        for fn, code in ((full, 2), (stop, 130)):
            monkeypatch.setattr(f"ssl_ws.commands.{module}.run", fn)
            assert cli.main([name, "x", "y"] if name == "knn" else [name, "--source", "digits", "--out", "o"]) == code
            err = capsys.readouterr().err.strip()
            assert ("finished work was saved" in err) == (name == "fit"), (name, err)
            assert "\n" not in err
    monkeypatch.setattr("ssl_ws.commands.pretrain.run", stop)  # a training run: kept checkpoints, --resume
    assert cli.main(["pretrain", "data.store=x"]) == 130
    err = capsys.readouterr().err.strip()
    assert "ssl-ws pretrain --resume RUN_DIR" in err and "finished work" not in err and "\n" not in err


def test_knn_names_the_k_it_used(base, tmp_path, capsys):
    rc, out, err = run_cli(capsys, "knn", base["enc"], base["store"], "--settings", "5000:0.1", "--out", tmp_path / "k.json")
    assert rc == 0, err
    assert "k=5000 (all 36 train INRs)" in out, out


def test_an_uncaught_disk_full_anywhere_is_one_line(monkeypatch, capsys):
    """A full disk where no command caught it (e.g. Lightning writing a checkpoint) is still one line."""
    import errno

    from ssl_ws import cli

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/last.ckpt")

    def torch_full(args):
        raise RuntimeError("[enforce fail at inline_container.cc:783] . PytorchStreamWriter failed writing file data/0: file write failed")

    def bug(args):
        raise RuntimeError("shape mismatch")  # a bug is not the user's to fix: it keeps its traceback

    monkeypatch.setitem(cli.COMMANDS, "info", ("info", "x"))
    for fn, code in ((full, 2), (torch_full, 2)):
        monkeypatch.setattr("ssl_ws.commands.info.run", fn)
        assert cli.main(["info", "somewhere"]) == code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
    monkeypatch.setattr("ssl_ws.commands.info.run", bug)
    import pytest

    with pytest.raises(RuntimeError):
        cli.main(["info", "somewhere"])


def test_resolve_device_one_rule_with_one_line_errors():
    import torch

    from ssl_ws import SslWsError
    from ssl_ws.devices import resolve_device

    assert resolve_device(None) == resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu") == resolve_device("cpu")
    for bad in ("gpu0", "cuda:99" if torch.cuda.is_available() else "cuda"):
        with pytest.raises(SslWsError) as exc:
            resolve_device(bad)
        assert "\n" not in str(exc.value)
