import json

import numpy as np
import pytest
import torch

from ssl_ws import INRSpec, SslWsError
from ssl_ws.cli import main
from ssl_ws.data import load_store, write_store
from ssl_ws.data.exporters import export_dwsnets
from tests.conftest import random_ws


def tiny_store(path, n_obj=7, views=2):
    spec = INRSpec((2, 8, 8, 1))
    ws = random_ws(spec, batch=n_obj * views, seed=5)
    obj = np.repeat(np.arange(n_obj), views)
    view = np.tile(np.arange(views), n_obj)
    labels = (obj * 3) % 4
    splits = {"train": [0, 2, 3, 5], "val": [6], "test": [1, 4]}
    meta = {"spec": spec, "class_names": list("abcd"), "image_size": [6, 6], "channels": 1}
    write_store(path, params=ws.to_flat().numpy(), labels=labels, object_ids=obj, view_ids=view,
                psnr=np.zeros(len(obj), np.float32), splits=splits, meta=meta)
    return load_store(path)


def test_export_then_import_round_trips(tmp_path):
    st = tiny_store(tmp_path / "store")
    assert main(["export-store", str(tmp_path / "store"), "--format", "dwsnets", "--out", str(tmp_path / "dws")]) == 0
    sp = json.loads((tmp_path / "dws" / "splits.json").read_text())
    assert sorted(sp) == ["test", "train", "val"]
    sd = torch.load(sp["train"]["path"][0], weights_only=True)  # absolute path, as the reference expects
    assert list(sd) == ["seq.0.weight", "seq.0.bias", "seq.1.weight", "seq.1.bias", "seq.2.weight", "seq.2.bias", "label"]
    assert sd["seq.0.weight"].shape == (8, 2) and sd["label"].dtype == torch.int64 and sd["label"].dim() == 0
    assert sd["seq.0.weight"].untyped_storage().nbytes() == 8 * 2 * 4  # compact: no whole-batch storage

    assert main(["import", "dwsnets", str(tmp_path / "dws"), "--out", str(tmp_path / "back"), "--image-size", "6x6"]) == 0
    back = load_store(tmp_path / "back")
    assert back.spec.layer_sizes == st.spec.layer_sizes and len(back) == 7  # one view per object
    for name in ("train", "val", "test"):
        ours = st.rows(name, max_views=1)
        theirs = back.rows(name)
        assert len(ours) == len(theirs)
        # the importer numbers objects in splits.json order, which is the export order
        np.testing.assert_array_equal(back.params[theirs], st.params[ours])
        np.testing.assert_array_equal(back.labels[theirs], st.labels[ours])
    assert int(sd["label"]) == int(st.labels[st.rows("train", 1)[0]])


def test_max_views_relative_paths_and_refusals(tmp_path):
    st = tiny_store(tmp_path / "store")
    counts = export_dwsnets(st, tmp_path / "dws", max_views=None, relative_paths=True)
    assert counts == {"train": 8, "val": 2, "test": 4}
    sp = json.loads((tmp_path / "dws" / "splits.json").read_text())
    assert sp["val"] == {"path": ["inrs/12.pth", "inrs/13.pth"], "label": [2, 2]}
    assert json.loads((tmp_path / "dws" / "export.json").read_text())["rows"]["val"] == [12, 13]
    with pytest.raises(SslWsError, match="already exists"):
        export_dwsnets(st, tmp_path / "dws")
    export_dwsnets(st, tmp_path / "dws", overwrite=True)
    assert len(list((tmp_path / "dws" / "inrs").iterdir())) == 7
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dws")]  # no temp dirs left behind
    with pytest.raises(SslWsError, match="max_views"):
        export_dwsnets(st, tmp_path / "x", max_views=0)
