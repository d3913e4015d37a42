"""`ssl-ws refit`: re-fitted views of a one-fit store (issue 31)."""

import json

import numpy as np
import pytest
import torch

from ssl_ws.cli import main
from ssl_ws.data import load_store
from ssl_ws.inr.fit import psnr_from_mse
from ssl_ws.inr.refit import cached_refit, refit_cache_path
from ssl_ws.inr.render import render_image

FILES = ["meta.json", "params.npy", "labels.npy", "object_ids.npy", "view_ids.npy", "psnr.npy", "splits.json"]


@pytest.fixture(scope="module")
def one_fit(tmp_path_factory):
    path = tmp_path_factory.mktemp("one") / "store"
    assert main(["fit", "--source", "digits", "--limit", "30", "--views", "1", "--steps", "60", "--chunk", "8",
                 "--split", "0.6,0.2,0.2", "--device", "cpu", "--workers", "1", "--out", str(path)]) == 0
    return str(path)


def refit_args(src, out, *extra):
    return ["refit", src, "--out", str(out), "--device", "cpu", "--workers", "1", "--chunk", "8", *extra]


def test_refit_adds_fresh_fits_of_each_training_object(one_fit, tmp_path, capsys):
    out = tmp_path / "refit"
    assert main(refit_args(one_fit, out, "--views", "2")) == 0
    a, b = load_store(one_fit), load_store(out)
    assert f"re-fitted views of {len(a.splits['train'])} objects" in capsys.readouterr().out
    train = set(a.splits["train"].tolist())
    assert len(b) == len(a) + 2 * len(train)
    assert {k: v.tolist() for k, v in a.splits.items()} == {k: v.tolist() for k, v in b.splits.items()}
    # object-major; the original rows are there unchanged, as view 0
    order = np.lexsort((b.view_ids, b.object_ids))
    np.testing.assert_array_equal(order, np.arange(len(b)))
    v0 = b.view_ids == 0
    np.testing.assert_array_equal(b.params[v0], a.params)
    np.testing.assert_array_equal(b.object_ids[v0], a.object_ids)
    # every training object has views 0, 1, 2; val/test objects only their original fit
    for o in a.object_ids:
        views = sorted(b.view_ids[b.object_ids == o].tolist())
        assert views == ([0, 1, 2] if o in train else [0])
        assert len(set(b.labels[b.object_ids == o].tolist())) == 1
    # the new fits start from other inits (different weights) but draw the same picture
    new = ~v0
    first = {int(o): i for i, o in enumerate(a.object_ids)}
    src_rows = np.array([first[int(o)] for o in b.object_ids[new]])
    diff = np.abs(b.params[new] - a.params[src_rows]).mean(1)
    assert (diff > 0.5 * np.abs(a.params[src_rows]).mean(1)).all()  # independent inits: as far apart as two draws
    h, w = a.image_size
    with torch.no_grad():
        target = render_image(a.weights(src_rows), h, w).clamp(0, 1)
        got = render_image(b.weights(np.flatnonzero(new)), h, w)
    psnr = psnr_from_mse(((got - target) ** 2).flatten(1).mean(1))
    assert float(psnr.median()) > 25.0
    np.testing.assert_allclose(b.psnr[new], psnr.numpy(), atol=0.5)
    assert b.meta["refit"]["views"] == 2 and b.meta["refit"]["splits"] == ["train"]
    assert b.meta["num_views"] == 3 and b.meta["refit"]["fit"]["recipe"] == "siren"


def test_refit_resumes_to_the_same_store(one_fit, tmp_path, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(refit_args(one_fit, full)) == 0
    assert main(refit_args(one_fit, part, "--max-chunks", "1")) == 3
    assert not part.exists() and len(list((tmp_path / "part.partial").glob("chunk_*.npz"))) == 1
    assert main(refit_args(one_fit, part)) == 0
    for f in FILES:
        if f != "meta.json":
            assert (full / f).read_bytes() == (part / f).read_bytes(), f
    capsys.readouterr()


@pytest.mark.parametrize("extra, msg", [
    (["--views", "0"], "--views must be at least 1"),
    (["--splits", "nope"], "unknown split 'nope'"),
])
def test_refit_refuses_bad_arguments_in_one_line(one_fit, tmp_path, capsys, extra, msg):
    assert main(refit_args(one_fit, tmp_path / "x", *extra)) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_refit_refuses_its_own_input_and_existing_output(one_fit, tmp_path, capsys):
    assert main(refit_args(one_fit, one_fit)) == 2
    assert "already exists" in capsys.readouterr().err


def test_cached_refit_is_reused_and_follows_a_rewritten_store(one_fit, tmp_path):
    import shutil

    store = load_store(one_fit)
    path = cached_refit(store, 1, tmp_path / "cache", device="cpu", workers=1)
    mtime = (path / "params.npy").stat().st_mtime_ns
    assert cached_refit(store, 1, tmp_path / "cache", device="cpu", workers=1) == path
    assert (path / "params.npy").stat().st_mtime_ns == mtime  # reused, not fitted again
    assert refit_cache_path(store, 2, tmp_path / "cache") != path
    copy = tmp_path / "copy"
    shutil.copytree(one_fit, copy)
    meta = json.loads((copy / "meta.json").read_text())
    meta["class_names"][0] = "zero"  # a different store at another path: another entry
    (copy / "meta.json").write_text(json.dumps(meta))
    assert refit_cache_path(load_store(copy), 1, tmp_path / "cache") != path


def test_refit_of_a_store_without_recipe_takes_the_published_one(tmp_path, capsys):
    """An imported store records no fitting recipe: refit uses `dwsnets`; without an image size
    it cannot render its INRs and says so in one line."""
    from _train_helpers import tiny_store
    from ssl_ws.inr.refit import plan_refit

    bare = load_store(tiny_store(tmp_path / "bare", n_obj=10, views=1))
    assert main(refit_args(str(bare.path), tmp_path / "x")) == 2
    assert "no 2-D image_size" in capsys.readouterr().err
    meta = json.loads((bare.path / "meta.json").read_text())
    meta.update(image_size=[6, 6], fit=None)
    (bare.path / "meta.json").write_text(json.dumps(meta))
    plan = plan_refit(load_store(bare.path), 1)
    assert plan.fit_cfg["recipe"] == "dwsnets" and plan.fit_cfg["lr"] == 5e-4 and len(plan) == 6


def test_cached_refit_extends_a_smaller_one_to_the_same_store(one_fit, tmp_path):
    store = load_store(one_fit)
    one = cached_refit(store, 1, tmp_path / "grow", device="cpu", workers=1)
    two = cached_refit(store, 2, tmp_path / "grow", device="cpu", workers=1)  # adds view 2 to `one`
    fresh = cached_refit(store, 2, tmp_path / "fresh", device="cpu", workers=1)
    for f in FILES:
        if f != "meta.json":
            assert (two / f).read_bytes() == (fresh / f).read_bytes(), f
    a, b = load_store(two).meta["refit"], load_store(fresh).meta["refit"]
    assert a["views"] == b["views"] == 2 and a["source_store"] == b["source_store"]
    assert load_store(one).num_views == 2 and load_store(two).num_views == 3
