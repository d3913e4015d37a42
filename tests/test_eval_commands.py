"""End to end: embed, linear-probe, knn, index, query (and finetune) on a tiny toy store,
plus the one-line errors of bad input."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_ws import INRSpec, WeightNormalizer
from ssl_ws.cli import main
from ssl_ws.data import load_store, write_store

SPEC = INRSpec((2, 8, 8, 1))
CLASSES = ["small", "medium", "large"]
SCALES = [0.3, 1.0, 3.0]  # classes differ clearly in weight statistics
OBJECTS_PER_CLASS, VIEWS = 12, 2


def toy_store(path, spec=SPEC, seed=0, empty_val=False):
    rng = np.random.default_rng(seed)
    n_obj = OBJECTS_PER_CLASS * len(CLASSES)
    obj_label = np.arange(n_obj) % len(CLASSES)
    object_ids = np.repeat(np.arange(n_obj), VIEWS)
    view_ids = np.tile(np.arange(VIEWS), n_obj)
    labels = obj_label[object_ids]
    scale = np.asarray(SCALES)[labels][:, None]
    params = (rng.uniform(-1, 1, (len(labels), spec.n_params)) * 0.3 * scale).astype(np.float32)
    objs = {c: np.flatnonzero(obj_label == c) for c in range(len(CLASSES))}
    tr, va, te = [], [], []
    for c, o in objs.items():
        tr += o[:6].tolist()
        (tr if empty_val else va).extend(o[6:9].tolist())
        te += o[9:].tolist()
    meta = {"spec": spec, "class_names": CLASSES, "image_size": [8, 8], "channels": 1,
            "fit": {"recipe": "siren", "steps": 20, "seed": 0}}
    write_store(path, params=params, labels=labels, object_ids=object_ids, view_ids=view_ids,
                psnr=np.full(len(labels), 30.0, np.float32), splits={"train": tr, "val": va, "test": te}, meta=meta)
    return str(path)


def toy_encoder(path, spec=SPEC, seed=0):
    from ssl_ws.models import build_encoder
    from ssl_ws.models.export import EmbeddingModel, save_encoder

    torch.manual_seed(seed)
    enc = build_encoder("dwsnet", spec, hidden=8, n_layers=2, out_dim=16, num_heads=2)
    cfg = dict(enc.config) if hasattr(enc, "config") else {}
    cfg["name"] = "dwsnet"
    model = EmbeddingModel(enc, WeightNormalizer.identity(spec), spec, cfg)
    save_encoder(model, path)
    return str(path), model.identity


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    store = toy_store(d / "store")
    ckpt, ident = toy_encoder(d / "enc" / "encoder.pt")
    other, other_ident = toy_encoder(d / "enc2" / "encoder.pt", seed=1)
    assert ident != other_ident
    return {"dir": d, "store": store, "ckpt": ckpt, "ident": ident, "other": other}


def cli(*args):
    return main([str(a) for a in args])


def test_embed(toy, capsys):
    out = toy["dir"] / "emb"
    proj = toy["dir"] / "proj"
    assert cli("embed", toy["ckpt"], toy["store"], "--split", "test", "--out", out, "--quiet",
               "--batch-size", 5, "--projector", proj) == 0
    emb = np.load(out / "embeddings.npy")
    rows = np.load(out / "rows.npy")
    store = load_store(toy["store"])
    np.testing.assert_array_equal(rows, store.rows("test"))
    np.testing.assert_array_equal(np.load(out / "labels.npy"), store.labels[rows])
    assert emb.dtype == np.float32 and emb.shape[0] == len(rows) and np.isfinite(emb).all()
    info = json.load(open(out / "info.json"))
    assert info["encoder"]["identity"] == toy["ident"] and info["config"]["split"] == "test"
    # batched embedding equals embedding the whole split at once with the model itself
    from ssl_ws.models.export import load_encoder

    with torch.no_grad():
        direct = load_encoder(toy["ckpt"])(store.weights(rows)).numpy()
    np.testing.assert_allclose(emb, direct, atol=1e-5)
    files = {f for _, _, fs in os.walk(proj) for f in fs}
    assert {"sprite.png", "metadata.tsv", "tensors.tsv", "projector_config.pbtxt"} <= files
    assert "embedded" in capsys.readouterr().out


def test_linear_probe_and_few_labels(toy):
    out = toy["dir"] / "lp.json"
    assert cli("linear-probe", toy["ckpt"], toy["store"], "--out", out, "--quiet") == 0
    res = json.load(open(out))
    r = res["results"]
    assert r["top1"] > 0.7  # chance: 1/3
    assert r["n_test"] == 3 * 3 * VIEWS and len(r["per_class"]) == 3
    assert res["encoder"]["identity"] == toy["ident"] and res["config"]["labels_per_class"] == "all"
    assert r["best_C"] in [float(c) for c in r["val_top1"]]
    # default output next to the checkpoint, suffixed by the label budget
    assert cli("linear-probe", toy["ckpt"], toy["store"], "--labels-per-class", 2, "--C", 1.0, "--quiet") == 0
    few = json.load(open(os.path.join(os.path.dirname(toy["ckpt"]), "linear_probe_lpc2.json")))["results"]
    assert few["n_train"] == 2 * 3 * VIEWS and few["train_objects"] == 6 and few["labels_per_class"] == 2


def test_knn_backends_agree(toy):
    outs = {}
    for backend in ("faiss", "torch"):
        out = toy["dir"] / f"knn_{backend}.json"
        assert cli("knn", toy["ckpt"], toy["store"], "--backend", backend, "--out", out, "--quiet") == 0
        outs[backend] = json.load(open(out))["results"]
    f, t = outs["faiss"], outs["torch"]
    assert f["backend"] == "faiss" and t["backend"] == "torch"
    assert [s["k"] for s in f["settings"]] == [20, 200] and [s["temperature"] for s in f["settings"]] == [0.07, 0.1]
    assert [s["top1"] for s in f["settings"]] == [s["top1"] for s in t["settings"]]
    assert f["top1"] > 0.7
    assert cli("knn", toy["ckpt"], toy["store"], "--labels-per-class", 1, "--settings", "3:0.1",
               "--out", toy["dir"] / "k1.json", "--quiet") == 0
    assert json.load(open(toy["dir"] / "k1.json"))["results"]["n_train"] == 3 * VIEWS


def test_index_and_query(toy, capsys, tmp_path):
    idx = tmp_path / "index"
    assert cli("index", toy["ckpt"], toy["store"], "--out", idx, "--quiet") == 0
    info = json.load(open(idx / "index.json"))
    assert info["encoder"]["identity"] == toy["ident"] and info["index"]["kind"] == "flat"
    assert info["store"]["path"] == os.path.abspath(toy["store"])
    capsys.readouterr()
    png, js = tmp_path / "q.png", tmp_path / "q.json"
    assert cli("query", idx, "--id", 13, "-k", 4, "--png", png, "--json", js) == 0
    out = capsys.readouterr().out
    nb = json.load(open(js))["results"]["neighbours"]
    assert 13 not in [n["row"] for n in nb] and len(nb) == 4  # the query is not its own answer
    assert "large" in out or "small" in out or "medium" in out
    assert cli("query", idx, "--id", 13, "-k", 4, "--keep-self", "--json", js) == 0
    nb = json.load(open(js))["results"]["neighbours"]
    assert nb[0]["row"] == 13 and abs(nb[0]["similarity"] - 1.0) < 1e-4
    store = load_store(toy["store"])
    assert cli("query", idx, "--id", 13, "-k", 4, "--exclude-views", "--filter-class", "1", "--json", js) == 0
    nb = json.load(open(js))["results"]["neighbours"]
    assert all(n["object"] != int(store.object_ids[13]) and n["label"] == 1 for n in nb) and len(nb) == 4
    # batch: one JSON line per id
    ids = tmp_path / "ids.txt"
    ids.write_text("13, 14\n15\n")
    lines_out = tmp_path / "q.jsonl"
    assert cli("query", idx, "--ids-file", ids, "-k", 2, "--jsonl", lines_out) == 0
    lines = [json.loads(x) for x in open(lines_out)]
    assert [x["query"]["row"] for x in lines] == [13, 14, 15] and all(len(x["neighbours"]) == 2 for x in lines)
    assert all(x["query"]["row"] not in [n["row"] for n in x["neighbours"]] for x in lines)
    ids.write_text("13 x")
    assert cli("query", idx, "--ids-file", ids) == 2
    assert cli("query", idx, "--id", 13, "--filter-class", "nonsense") == 2
    from ssl_ws.retrieve.gallery import picture_size

    assert Image.open(png).size == picture_size(8, 8, 4)

    # an index of the train split, queried with a test row (embedded on the fly) and with an image
    tr_idx = tmp_path / "train_index"
    assert cli("index", toy["ckpt"], toy["store"], "--out", tr_idx, "--split", "train", "--index", "hnsw", "--quiet") == 0
    store = load_store(toy["store"])
    test_row = int(store.rows("test")[0])
    assert cli("query", tr_idx, "--id", test_row, "-k", 3, "--json", js) == 0
    assert json.load(open(js))["results"]["query"]["indexed"] is False
    img = tmp_path / "digit.png"
    Image.fromarray((np.eye(8) * 255).astype(np.uint8), "L").save(img)
    assert cli("query", tr_idx, "--image", img, "-k", 3, "--png", tmp_path / "qi.png", "--json", js) == 0
    assert len(json.load(open(js))["results"]["neighbours"]) == 3 and os.path.exists(tmp_path / "qi.png")
    # a folder of images: one batched fit, one JSON line per image (non-images skipped)
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray((np.eye(8) * 255).astype(np.uint8), "L").save(folder / "a.png")
    Image.fromarray((np.fliplr(np.eye(8)) * 255).astype(np.uint8), "L").save(folder / "b.png")
    (folder / "notes.txt").write_text("not an image")
    lines = tmp_path / "images.jsonl"
    assert cli("query", tr_idx, "--image", folder, "-k", 3, "--jsonl", lines) == 0
    got = [json.loads(line) for line in open(lines)]
    assert [os.path.basename(g["query"]["image"]) for g in got] == ["a.png", "b.png"]
    assert all(len(g["neighbours"]) == 3 for g in got)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("query", tr_idx, "--image", empty) == 2


def test_bad_inputs(toy, tmp_path, capsys):
    idx = tmp_path / "index"
    assert cli("index", toy["ckpt"], toy["store"], "--out", idx, "--split", "test", "--quiet") == 0
    capsys.readouterr()

    def fails(*args, match):
        assert cli(*args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and match in err and "\n" not in err, err

    n = len(load_store(toy["store"]))
    fails("query", idx, "--id", n, match="out of range")
    fails("query", idx, "--id", -1, match="out of range")
    fails("query", idx, "--id", 0, "--ckpt", toy["other"], match="encoder mismatch")
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((28, 28), np.uint8), "L").save(big)
    fails("query", idx, "--image", big, match="8x8")
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3)).astype(np.uint8), "RGB").save(rgb)
    fails("query", idx, "--image", rgb, match="grayscale")
    fails("query", tmp_path, "--id", 0, match="not a retrieval index")
    # the encoder file the index records was replaced by another encoder: refused, not silently mixed
    import shutil

    moved = tmp_path / "enc_copy.pt"
    shutil.copy(toy["ckpt"], moved)
    idx2 = tmp_path / "index2"
    assert cli("index", moved, toy["store"], "--out", idx2, "--split", "test", "--quiet") == 0
    train_row = int(load_store(toy["store"]).rows("train")[0])
    assert cli("query", idx2, "--id", train_row) == 0  # embedded on the fly with the recorded encoder
    shutil.copy(toy["other"], moved)
    capsys.readouterr()
    fails("query", idx2, "--id", train_row, match="encoder mismatch")
    # an empty split
    empty = toy_store(tmp_path / "empty_val", empty_val=True)
    fails("embed", toy["ckpt"], empty, "--split", "val", "--out", tmp_path / "e", "--quiet", match="empty")
    fails("embed", toy["ckpt"], toy["store"], "--split", "nope", "--out", tmp_path / "e", "--quiet", match="unknown split")
    fails("linear-probe", toy["ckpt"], empty, "--quiet", "--out", tmp_path / "x.json", match="val")
    # encoder / store architecture mismatch
    other = toy_store(tmp_path / "other_spec", spec=INRSpec((2, 4, 1)))
    fails("knn", toy["ckpt"], other, "--quiet", match="mismatch")
    fails("knn", toy["ckpt"], toy["store"], "--labels-per-class", 0, "--quiet", match="labels-per-class")
    fails("knn", toy["ckpt"], toy["store"], "--settings", "20", "--quiet", match="K:T")


def test_finetune(toy, tmp_path):
    out = tmp_path / "ft.json"
    # overrides may come before and after the options
    assert cli("finetune", toy["ckpt"], toy["store"],
               "trainer.max_epochs=2", "data.batch_size=6", "trainer.accelerator=cpu",
               "--labels-per-class", 3, "--out", out, "trainer.progress_bar=false",
               f"output_dir={tmp_path / 'runs'}", "augment.preset=none", "optim.lr=0.01") == 0
    res = json.load(open(out))
    r = res["results"]
    assert r["n_train"] == 3 * 3 * VIEWS and r["epochs"] == 2 and len(r["history"]) == 2
    assert 0.0 <= r["test_acc"] <= 1.0 and r["val_acc"] == max(h["val_acc"] for h in r["history"])
    assert res["encoder"]["identity"] == toy["ident"]  # the pretrained encoder it started from
    assert r["encoder_lr_factor"] == 0.1 and res["config"]["train_config"]["supervised"]["encoder_lr_factor"] == 0.1
    assert os.path.exists(r["best_checkpoint"])
