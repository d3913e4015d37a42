import numpy as np
import pytest

from ssl_ws.cli import main
from ssl_ws.data import load_store

FILES = ["meta.json", "params.npy", "labels.npy", "object_ids.npy", "view_ids.npy", "psnr.npy", "splits.json"]
BASE = ["fit", "--source", "digits", "--limit", "30", "--views", "2", "--steps", "40", "--chunk", "16",
        "--split", "0.6,0.2,0.2", "--device", "cpu"]


def test_fit_resume_gives_identical_store(tmp_path, capsys):
    full, part = str(tmp_path / "full"), str(tmp_path / "part")
    assert main(BASE + ["--out", full]) == 0
    out = capsys.readouterr().out
    assert "PSNR dB: median" in out and "p10" in out and ">= 40 dB" in out
    # interrupted after 2 of 4 chunks, then resumed with the same command
    assert main(BASE + ["--out", part, "--max-chunks", "2"]) == 3
    assert not (tmp_path / "part").exists() and len(list((tmp_path / "part.partial").glob("chunk_*.npz"))) == 2
    assert main(BASE + ["--out", part]) == 0
    assert not (tmp_path / "part.partial").exists()
    for f in FILES:
        assert (tmp_path / "full" / f).read_bytes() == (tmp_path / "part" / f).read_bytes(), f
    st = load_store(full)
    assert len(st) == 60 and st.view_ids.max() == 1
    objs = [set(st.splits[k].tolist()) for k in ("train", "val", "test")]
    assert not (objs[0] & objs[1] or objs[0] & objs[2] or objs[1] & objs[2])
    assert st.meta["fit"]["recipe"] == "siren" and st.meta["fit"]["steps"] == 40 and st.meta["fit"]["lr"] == 1e-3
    assert np.isfinite(st.psnr).all() and (st.psnr > 20).all()
    # another command with the same --out refuses to mix with saved chunks; existing store refused
    assert main(BASE + ["--out", full]) == 2
    assert "already exists" in capsys.readouterr().err


def test_shards_merge_to_the_full_store(tmp_path, capsys):
    args = BASE[:4] + ["12", "--views", "2", "--steps", "20", "--chunk", "8", "--device", "cpu"]
    assert main(args + ["--out", str(tmp_path / "full")]) == 0
    for i in range(2):
        assert main(args + ["--out", str(tmp_path / f"s{i}"), "--shard", f"{i}/2"]) == 0
    assert main(["merge", str(tmp_path / "s0"), "--out", str(tmp_path / "m")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["merge", str(tmp_path / "s1"), str(tmp_path / "s0"), "--out", str(tmp_path / "m")]) == 0
    a, b = load_store(tmp_path / "full"), load_store(tmp_path / "m")
    for k in ("labels", "object_ids", "view_ids"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    np.testing.assert_array_equal(a.params, b.params)  # every INR's fit is batch-independent, bit for bit
    np.testing.assert_array_equal(a.psnr, b.psnr)
    assert {k: v.tolist() for k, v in a.splits.items()} == {k: v.tolist() for k, v in b.splits.items()}
    capsys.readouterr()
    assert main(["info", str(tmp_path / "m")]) == 0
    info = capsys.readouterr().out
    assert "split train" in info and "views/object min 2" in info and "2 -> 32 -> 32 -> 1" in info


@pytest.mark.parametrize("argv, msg", [
    (["fit", "--source", "nope.npz", "--out", "X"], "not found"),
    (["fit", "--source", "fashion-mnist", "--data-dir", "/nonexistent", "--out", "X"], "not found"),
    (["fit", "--shard", "3/2", "--out", "X"], "--shard"),
    (["fit", "--workers", "0", "--out", "X"], "--workers"),
    (["info", "/nonexistent/store"], "not found"),
])
def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch, argv, msg):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and msg in err and "\n" not in err


def test_eval_views_fits_fewer_views_for_val_and_test(tmp_path):
    from ssl_ws import load_store
    from ssl_ws.cli import main

    out = tmp_path / "s"
    assert main(["fit", "--source", "digits", "--limit", "60", "--views", "3", "--eval-views", "1",
                 "--split", "0.5,0.25,0.25", "--steps", "5", "--out", str(out)]) == 0
    store = load_store(out)
    for split, views in (("train", 3), ("val", 1), ("test", 1)):
        rows = store.rows(split)
        objs = store.object_ids[rows]
        assert len(rows) > 0
        assert len(rows) == len(set(objs.tolist())) * views
        assert sorted(set(store.view_ids[rows].tolist())) == list(range(views))
    assert store.meta["eval_views"] == 1
