"""The shipped CPU recipes run on a store they have never seen, and the new encoders train with
SimCLR and augmentations (issue 18: augmentations act on weights; probe features and renders
are computed from the augmented INRs).

Each run is cut to a few optimizer steps on a tiny random store (2 -> 8 -> 8 -> 1 SIRENs, no
image size recorded), so this checks that the recipe is complete and valid anywhere, not what it
reaches (benchmarks/RESULTS.md measures that).
"""

import json
import os

import pytest

from _train_helpers import tiny_store
from ssl_ws.cli import main
from ssl_ws.data import load_store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHORT = ["trainer.max_steps=3", "eval.every_n_steps=3", "data.batch_size=8", "trainer.accelerator=cpu",
         "trainer.progress_bar=false", "data.num_workers=0"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("shipped")
    sized = tiny_store(d / "sized", n_obj=40, views=1)  # with an image size: its INRs can be rendered and refitted
    meta = json.loads(open(os.path.join(sized, "meta.json")).read())
    meta["image_size"] = [6, 6]
    with open(os.path.join(sized, "meta.json"), "w") as fh:
        json.dump(meta, fh)
    return {"two_fits": tiny_store(d / "two", n_obj=40, views=2), "one_fit": tiny_store(d / "one", n_obj=40, views=1),
            "one_fit_sized": sized}


def _run(kind, config, store, out, *extra):
    argv = [kind, "-c", os.path.join(ROOT, config), f"data.store={store}", f"output_dir={out}", *SHORT, *extra]
    assert main(argv) == 0, argv
    found = [os.path.join(r, f) for r, _, fs in os.walk(out) for f in fs if f == "results.json"]
    assert len(found) == 1
    return json.load(open(found[0]))


@pytest.mark.parametrize("config", ["configs/supervised/cpu.yaml", "configs/supervised/best.yaml"])
@pytest.mark.parametrize("fits", ["one_fit", "two_fits"])
def test_supervised_recipes_run_anywhere(stores, tmp_path, config, fits):
    res = _run("train", config, stores[fits], tmp_path)
    assert 0.0 <= res["test_acc"] <= 1.0 and res["history"]


@pytest.mark.parametrize("config", ["configs/pretrain/cpu.yaml", "configs/pretrain/best.yaml"])
@pytest.mark.parametrize("fits", ["one_fit", "one_fit_sized", "two_fits"])
def test_pretrain_recipes_run_anywhere(stores, tmp_path, config, fits, capsys):
    """One fit per object: the recipes refit every training object once (ssl.refit_views) and take
    two fits as positives; a store whose INRs cannot be rendered (no image size) trains on two
    augmentations of its one fit, which the recipes' `weak` augmentation makes different views."""
    res = _run("pretrain", config, stores[fits], tmp_path)
    assert res["history"] and all(h["knn_acc"] == h["knn_acc"] for h in res["history"])  # not NaN
    positives = res["config"]["ssl"]["positives"]
    if fits == "one_fit_sized":
        assert positives == "two_views" and res["store"] != res["source_store"]
        assert load_store(res["store"]).meta["refit"]["views"] == res["config"]["ssl"]["refit_views"] >= 1
    else:
        assert res["store"] == res["source_store"]
        assert positives == ("two_views" if fits == "two_fits" else "same_fit")
    if fits == "one_fit":
        assert "needs 2-D INRs and an image_size" in capsys.readouterr().err


@pytest.mark.parametrize("encoder", ["pixels-linear", "pixels-cnn", "dwsnet"])
def test_new_encoders_train_with_simclr_and_function_changing_augmentations(stores, tmp_path, encoder):
    """`paper` warps change the INR's function; the renders / probe features follow the augmented weights."""
    extra = [f"encoder.name={encoder}", "augment.preset=paper", "ssl.positives=two_views"]
    if encoder == "dwsnet":
        extra += ["encoder.probes=16", "encoder.canonical=true"]
    res = _run("pretrain", "configs/pretrain/cpu.yaml", stores["two_fits"], tmp_path, *extra)
    assert res["history"]
