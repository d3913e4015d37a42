"""Retrieval index (flat / hnsw / ivf, save/load/rebuild), query pictures, image loading."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_ws.errors import SslWsError
from ssl_ws.retrieve.gallery import picture_size, query_picture
from ssl_ws.retrieve.index import RetrievalIndex
from ssl_ws.eval.knn import l2_normalize
from ssl_ws.retrieve.query import load_image


def make_index(kind="flat", n=500, dim=12, seed=0, **params):
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim)).astype(np.float32) * rng.uniform(0.5, 3, (n, 1)).astype(np.float32)
    rows = np.arange(n) * 2 + 1  # index positions != row ids
    info = {"class_names": ["a", "b", "c"], "encoder": {"identity": "abc"}}
    return RetrievalIndex.build(emb, rows, rows % 3, rows // 2, rows % 2, info=info, kind=kind, **params)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_query_finds_itself_first(kind):
    idx = make_index(kind, nprobe=64) if kind == "ivf" else make_index(kind)
    sims, pos = idx.search(idx.emb[:50], k=5)
    assert np.mean(pos[:, 0] == np.arange(50)) >= (1.0 if kind == "flat" else 0.95)
    assert np.all(np.diff(sims, axis=1) <= 1e-6)  # best first
    np.testing.assert_allclose(sims[pos[:, 0] == np.arange(50), 0], 1.0, atol=1e-5)  # cosine, scale-free
    nb = idx.neighbours(idx.emb[7] * 5.0, k=3)
    assert nb[0]["row"] == idx.rows[7] and nb[0]["class_name"] == "abc"[idx.labels[7]]
    assert set(nb[0]) == {"row", "label", "class_name", "object", "view", "similarity"}


@pytest.mark.parametrize("post", ["center", "l2", "whiten"])
def test_flat_matches_brute_force(post, tmp_path):
    from ssl_ws.retrieve.retrieval import postprocess

    idx = make_index(post=post)
    q = np.random.default_rng(5).standard_normal((20, 12)).astype(np.float32)
    sims, pos = idx.search(q, k=10)
    pp = postprocess(idx.emb, post)  # fitted on the indexed embeddings, applied to the queries
    brute = pp(q).astype(np.float64) @ pp(idx.emb).T.astype(np.float64)
    if post == "l2":  # plain cosine, as indexes before post-processing
        brute = l2_normalize(q) @ l2_normalize(idx.emb).T
    back = RetrievalIndex.load(idx.save(str(tmp_path / "i")))  # the statistics travel with the index
    assert back.post.mode == post
    np.testing.assert_array_equal(back.search(q, k=10)[1], pos)
    np.testing.assert_array_equal(pos, np.argsort(-brute, axis=1)[:, :10])
    np.testing.assert_allclose(sims, np.sort(brute, axis=1)[:, ::-1][:, :10], atol=1e-5)


def test_save_load_and_rebuild(tmp_path):
    idx = make_index("hnsw")
    out = idx.save(str(tmp_path / "idx"))
    for f in ("index.json", "embeddings.npy", "rows.npy", "labels.npy", "object_ids.npy", "view_ids.npy", "index.faiss"):
        assert os.path.exists(os.path.join(out, f))
    back = RetrievalIndex.load(out)
    assert back.info["index"]["kind"] == "hnsw" and back.info["index"]["M"] == 32
    np.testing.assert_array_equal(back.rows, idx.rows)
    np.testing.assert_array_equal(back.search(idx.emb[:5], 3)[1], idx.search(idx.emb[:5], 3)[1])
    # the raw embeddings are enough: without index.faiss it is rebuilt with the recorded parameters
    os.remove(os.path.join(out, "index.faiss"))
    again = RetrievalIndex.load(out)
    assert again.index.ntotal == len(idx) and again.index.hnsw.efSearch == 64
    flat = again.rebuild("flat")
    assert flat.info["index"]["kind"] == "flat" and flat.search(idx.emb[3], 1)[1][0, 0] == 3
    assert idx.position_of_row(idx.rows[9]) == 9 and idx.position_of_row(0) is None
    with pytest.raises(SslWsError, match="not a retrieval index"):
        RetrievalIndex.load(str(tmp_path))
    with pytest.raises(SslWsError):
        idx.search(np.zeros((1, 5), np.float32))
    with pytest.raises(SslWsError):
        make_index("annoy")


def test_query_picture_size_and_content(tmp_path):
    h, w, k = 8, 8, 4
    q = torch.zeros(1, h, w)
    q[:, 2:6, 2:6] = 1.0
    nbs = torch.rand(k, 1, h, w)
    path = str(tmp_path / "q.png")
    img = query_picture(q, nbs, ["query", "7", "row 3"], [["seven", "row 1", "sim 0.9"]] * k, path=path,
                        match=[True, False, True, None])
    saved = Image.open(path)
    assert saved.size == img.size == picture_size(h, w, k)
    assert saved.size[0] >= (k + 1) * 112  # tiny 8x8 digits are upscaled
    arr = np.asarray(saved.convert("L"))
    # the query's bright square is drawn upscaled (14x): centre white, corner black
    assert arr[8 + 4 * 14, 8 + 4 * 14] == 255 and arr[8 + 1 * 14, 8 + 1 * 14] == 0
    with pytest.raises(SslWsError):
        query_picture(q, nbs, ["q"], [["x"]] * (k - 1))


def test_load_image_checks(tmp_path):
    gray = (np.arange(64).reshape(8, 8) * 4).astype(np.uint8)
    p = str(tmp_path / "g.png")
    Image.fromarray(gray, "L").save(p)
    t = load_image(p, 1, (8, 8))
    assert t.shape == (1, 1, 8, 8)
    np.testing.assert_allclose(t[0, 0].numpy(), gray / 255.0, atol=1e-6)
    # a gray picture saved as RGB is accepted for a grayscale store
    Image.fromarray(np.stack([gray] * 3, -1), "RGB").save(str(tmp_path / "g3.png"))
    assert load_image(str(tmp_path / "g3.png"), 1, (8, 8)).shape == (1, 1, 8, 8)
    colour = np.stack([gray, gray[::-1], gray.T], -1)
    Image.fromarray(colour, "RGB").save(str(tmp_path / "c.png"))
    with pytest.raises(SslWsError, match="colour"):
        load_image(str(tmp_path / "c.png"), 1, (8, 8))
    assert load_image(str(tmp_path / "c.png"), 3, (8, 8)).shape == (1, 3, 8, 8)
    with pytest.raises(SslWsError, match="channel"):
        load_image(p, 3, (8, 8))
    with pytest.raises(SslWsError, match="8x8"):
        load_image(p, 1, (28, 28))
    assert load_image(p, 1, (28, 28), resize=True).shape == (1, 1, 28, 28)
    with pytest.raises(SslWsError, match="no such image"):
        load_image(str(tmp_path / "missing.png"), 1, (8, 8))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(SslWsError, match="cannot read"):
        load_image(str(tmp_path / "bad.png"), 1, (8, 8))


def test_self_exclusion_objects_and_class_filter():
    idx = make_index()
    q = idx.emb[10]
    own_row, own_obj = int(idx.rows[10]), int(idx.object_ids[10])
    assert idx.neighbours(q, 3)[0]["row"] == own_row  # the raw search finds the query itself first
    nb = idx.neighbours(q, 5, exclude_rows=[own_row])
    assert len(nb) == 5 and own_row not in [n["row"] for n in nb]
    nb = idx.neighbours(q, 5, exclude_objects=[own_obj])
    assert all(n["object"] != own_obj for n in nb) and len(nb) == 5
    nb = idx.neighbours(q, 7, exclude_rows=[own_row], label=2)
    assert len(nb) == 7 and all(n["label"] == 2 for n in nb)
    sims = [n["similarity"] for n in nb]
    assert sims == sorted(sims, reverse=True)
    # a filter deeper than the first search still returns k answers when they exist
    assert len(idx.neighbours(q, 150, label=1)) == 150


def test_old_indexes_load_as_plain_cosine(tmp_path):
    import json

    idx = make_index(post="l2")
    out = idx.save(str(tmp_path / "i"))
    meta = json.load(open(os.path.join(out, "index.json")))
    del meta["post"]  # written before post-processing existed
    json.dump(meta, open(os.path.join(out, "index.json"), "w"))
    assert RetrievalIndex.load(out).post.mode == "l2"
