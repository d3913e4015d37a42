"""End-to-end test of the whole pipeline: `ssl-ws quickstart --tiny` (fit, pretrain, probe, kNN,
supervised training, index, query) on real sklearn digits, plus the shared-init fitting scheme."""

import glob
import json
import os

import numpy as np
import torch

from ssl_ws import load_store
from ssl_ws.cli import main
from ssl_ws.data.sources import load_source
from ssl_ws.inr.fit import fit_like_store


def test_quickstart_tiny_end_to_end(tmp_path, capsys):
    out, store = tmp_path / "qs", tmp_path / "store"
    assert main(["quickstart", "--tiny", "--output-dir", str(out), "--store", str(store)]) == 0
    summary = json.loads((out / "quickstart.json").read_text())
    table = summary["table"]
    assert {r["model"] for r in table} == {"SimCLR DWSNet, one fit + refits", "SimCLR DWSNet, two real fits",
                                           "same DWSNet, random weights"}
    assert load_store(str(store) + "-2fit").num_views == 2
    # one fit per digit from independent inits; SimCLR trained on its re-fitted views
    st = load_store(store)
    assert st.num_views == 1 and st.meta["fit"]["init_scheme"] == "independent"
    trained_on = load_store(summary["pretrain_store"])
    assert trained_on.meta["refit"]["views"] == 1 and trained_on.num_views == 2
    for r in table:
        assert 0.0 <= r["linear_probe"] <= 1.0 and 0.0 <= r["knn"] <= 1.0
    assert 0.0 <= summary["supervised"]["test_acc"] <= 1.0
    assert os.path.getsize(summary["query_picture"]) > 1000
    ret = summary["retrieval"]  # retrieval quality of the encoder beside the raw weights
    assert set(ret) == {"encoder", "raw", "pixels"} and ret["encoder"]["post"] == "center"
    assert all(0.0 <= r["class_r1"] <= 1.0 for r in ret.values())
    assert glob.glob(str(out / "simclr" / "*" / "**" / "events.out.tfevents.*"), recursive=True)
    assert (out / "encoder.pt").is_file() and (out / "index").is_dir()
    printed = capsys.readouterr().out
    assert "=== results" in printed and "tensorboard --logdir" in printed and "same class first" in printed
    # the store is cached: a second run reuses it instead of fitting again
    before = os.path.getmtime(store / "params.npy")
    assert main(["quickstart", "--tiny", "--output-dir", str(out), "--store", str(store)]) == 0
    assert "reusing the INR store" in capsys.readouterr().out
    assert os.path.getmtime(store / "params.npy") == before


def test_shared_init_store_refits_new_images_from_the_same_init(tmp_path):
    path = tmp_path / "shared"
    assert main(["fit", "--source", "digits", "--limit", "12", "--views", "2", "--init", "shared",
                 "--steps", "15", "--split", "4,4,4", "--out", str(path)]) == 0
    store = load_store(path)
    assert store.meta["fit"]["init_scheme"] == "shared"
    images = torch.from_numpy(load_source("digits", limit=12).images[:3])
    # fitting the same images again "like the store" reproduces their rows: same init, same recipe
    refit = fit_like_store(store, images, views=2).to_flat()
    order = np.lexsort((store.view_ids, store.object_ids))
    stored = torch.from_numpy(np.asarray(store.params)[order][:6])
    torch.testing.assert_close(refit, stored, rtol=1e-4, atol=1e-4)
    # and with a shared init the two views of an object differ (independent fits), while view 0 of
    # two different images started from one init
    assert not torch.allclose(refit[0], refit[1])
