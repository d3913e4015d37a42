"""`ssl-ws baselines` and :func:`ssl_ws.eval.baselines.run_baselines` on real digits INRs:
raw-weight LR separates a shared-init store and falls to chance on an independent-init one,
while rendered-pixel LR does well on both; the CLI table, JSON and one-line errors."""

import json

import numpy as np
import pytest
import torch

from _train_helpers import tiny_store
from ssl_ws.cli import main
from ssl_ws.data import load_store, write_store
from ssl_ws.eval.baselines import METHODS, _lr, parse_methods, run_baselines

FIT = ["fit", "--source", "digits", "--limit", "300", "--views", "2", "--split", "0.6,0.2,0.2", "--device", "cpu"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("baselines")
    out = {}
    for init in ("shared", "independent"):
        assert main(FIT + ["--init", init, "--out", str(d / init)]) == 0
        out[init] = str(d / init)
    return out


def cli(*args):
    return main([str(a) for a in args])


def test_shared_init_raw_weights_and_pixels_are_well_above_chance(stores):
    store = load_store(stores["shared"])
    res = run_baselines(store, ("raw-lr", "pixels-lr"), progress=False, device="cpu")
    assert list(res["methods"]) == ["raw-lr", "pixels-lr"]
    n_test_objects = len(store.splits["test"])
    assert abs(res["chance_test_acc"] - 0.1) < 0.05  # 10 balanced classes
    for name, m in res["methods"].items():
        assert m["train_acc"] >= 0.95, (name, m)  # converged: the baseline fits its training rows
        assert m["test_acc"] > 0.8 and m["val_acc"] > 0.8, (name, m)
        assert m["converged"] and m["C"] == 1.0
        assert m["n_train"] == len(store.rows("train")) and m["n_test"] == n_test_objects  # 1 view per test object
    assert res["methods"]["raw-lr"]["features"] == store.spec.n_params == 1185
    assert res["methods"]["pixels-lr"]["features"] == 64
    assert res["config"]["image_size"] == [8, 8] and res["config"]["image_size_from"] == "store"


def test_independent_init_raw_weights_fall_to_chance_pixels_do_not(stores):
    res = run_baselines(stores["independent"], "raw-lr,pixels-lr", progress=False, device="cpu")
    raw, pix = res["methods"]["raw-lr"], res["methods"]["pixels-lr"]
    assert raw["train_acc"] >= 0.95  # it memorizes the training INRs ...
    assert raw["test_acc"] < 0.35  # ... but the flat weights of independent fits do not generalize
    assert pix["test_acc"] > 0.8  # the function they compute does


def test_cli_table_json_and_a_deterministic_cnn(stores, tmp_path, capsys):
    out = tmp_path / "res" / "baselines.json"
    assert cli("baselines", stores["shared"], "--methods", "pixels-cnn,raw-lr", "--cnn-epochs", 1,
               "--train-views", 1, "--device", "cpu", "--quiet", "--out", out) == 0
    printed = capsys.readouterr().out
    assert "pixels-cnn" in printed and "raw-lr" in printed and "test acc" in printed and str(out) in printed
    payload = json.loads(out.read_text())
    assert payload["command"] == "baselines" and payload["config"]["cnn_epochs"] == 1
    res = payload["results"]
    assert set(res) >= {"store", "methods", "config"} and list(res["methods"]) == ["pixels-cnn", "raw-lr"]
    store = load_store(stores["shared"])
    for m in res["methods"].values():
        assert {"train_acc", "val_acc", "test_acc", "seconds", "n_train", "n_test"} <= set(m)
        assert m["n_train"] == len(store.splits["train"])  # --train-views 1: one row per object
    cnn = res["methods"]["pixels-cnn"]
    assert cnn["epochs"] == 1 and 0.0 <= cnn["test_acc"] <= 1.0 and np.isfinite(cnn["final_train_loss"])
    torch.manual_seed(1234)  # the global RNG's state must not matter, only --seed
    again = run_baselines(store, ["pixels-cnn"], train_views=1, cnn_epochs=1, progress=False, device="cpu")
    assert again["methods"]["pixels-cnn"]["final_train_loss"] == cnn["final_train_loss"]
    assert again["methods"]["pixels-cnn"]["test_acc"] == cnn["test_acc"]
    other = run_baselines(store, ["pixels-cnn"], train_views=1, cnn_epochs=1, seed=1, progress=False, device="cpu")
    assert other["methods"]["pixels-cnn"]["final_train_loss"] != cnn["final_train_loss"]


def test_eval_views_all_and_a_store_without_image_size(stores, tmp_path):
    store = load_store(stores["shared"])
    res = run_baselines(store, ["raw-lr"], eval_views=None, progress=False)
    assert res["methods"]["raw-lr"]["n_test"] == 2 * len(store.splits["test"])
    assert res["render_seconds"] is None  # no pixel method, nothing rendered
    bare = load_store(tiny_store(tmp_path / "bare"))  # meta.json records no image size
    res = run_baselines(bare, ["pixels-lr"], progress=False, device="cpu")
    assert res["config"]["image_size"] == [28, 28] and res["config"]["image_size_from"] == "default"
    assert res["methods"]["pixels-lr"]["features"] == 28 * 28


def test_bad_input_is_one_line(stores, tmp_path, capsys):
    def fails(*args, match):
        assert cli("baselines", *args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and match in err and "\n" not in err, err

    fails(stores["shared"], "--methods", "raw-lr,svm", match="unknown baseline method 'svm'")
    fails(stores["shared"], "--methods", ",", match="no baseline method")
    fails(tmp_path / "nope", match="not found")
    fails(stores["shared"], "--train-views", 0, match="train-views")
    fails(stores["shared"], "--cnn-epochs", 0, "--methods", "pixels-cnn", match="cnn-epochs")
    one = tmp_path / "one_class"
    write_store(one, params=np.zeros((4, 9), np.float32), labels=np.zeros(4), object_ids=np.arange(4),
                view_ids=np.zeros(4), psnr=np.zeros(4, np.float32), splits={"train": [0, 1], "val": [2], "test": [3]},
                meta={"spec": {"layer_sizes": [2, 2, 1]}, "class_names": ["only"]})
    fails(one, match="single class")
    assert parse_methods(" raw-lr , raw-lr,pixels-lr") == ("raw-lr", "pixels-lr") and set(METHODS) == {
        "raw-lr", "pixels-lr", "pixels-cnn"}


def test_labels_per_class_trains_on_the_objects_the_probe_draws(stores, tmp_path, capsys):
    """--labels-per-class N keeps every view of N objects per class, the subset linear-probe /
    knn / finetune draw with the same seed: the few-label column of a table has its baseline."""
    from ssl_ws.eval.few_labels import sample_per_class

    store = load_store(stores["shared"])
    res = run_baselines(store, ["raw-lr"], labels_per_class=3, seed=1, progress=False)
    m = res["methods"]["raw-lr"]
    assert m["n_train"] == 3 * 10 * 2  # 3 objects per class, both views of each
    tr = store.rows("train")
    expected = tr[sample_per_class(np.asarray(store.labels)[tr], np.asarray(store.object_ids)[tr], 3, 1)]
    objects = np.unique(np.asarray(store.object_ids)[expected])
    assert len(objects) == 30 and np.all(np.bincount(np.asarray(store.labels)[expected]) == 6)
    rows = {"train": expected, "val": store.rows("val", max_views=1), "test": store.rows("test", max_views=1)}
    direct = _lr(*[(np.asarray(store.params[r], np.float32), np.asarray(store.labels)[r].astype(np.int64))
                   for r in rows.values()], seed=1)
    assert direct["test_acc"] == m["test_acc"] and direct["val_acc"] == m["val_acc"]  # trained on exactly those rows
    assert res["config"]["labels_per_class"] == 3 and m["train_acc"] == 1.0 and m["test_acc"] < 0.99
    other = run_baselines(store, ["raw-lr"], labels_per_class=3, seed=2, progress=False)
    assert other["methods"]["raw-lr"]["test_acc"] != m["test_acc"]  # another draw, another subset
    assert cli("baselines", stores["shared"], "--methods", "raw-lr", "--labels-per-class", 3, "--quiet") == 0
    assert "3 objects/class" in capsys.readouterr().out
    assert cli("baselines", stores["shared"], "--labels-per-class", 0) == 2
    assert "labels-per-class" in capsys.readouterr().err
