"""`ssl-ws augmentations` and `ssl-ws show-augment` on a tiny store."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import random_ws
from ssl_ws import INRSpec, render_image
from ssl_ws.cli import main


@pytest.fixture
def tiny_store(tmp_path):
    from ssl_ws.data import write_store

    spec = INRSpec((2, 16, 16, 1))
    ws = random_ws(spec, batch=8)
    path = tmp_path / "store"
    write_store(
        path,
        params=ws.to_flat().numpy(),
        labels=(np.arange(8) // 2) % 2,  # one label per object (its two views)
        object_ids=np.arange(8) // 2,
        view_ids=np.arange(8) % 2,
        psnr=np.full(8, 30.0, dtype=np.float32),
        splits={"train": [0, 1, 2], "val": [3], "test": []},
        meta={"spec": spec, "image_size": [8, 8], "class_names": ["a", "b"]},
    )
    return path, ws


def test_augmentations_lists_presets_and_transforms(capsys):
    assert main(["augmentations"]) == 0
    out = capsys.readouterr().out
    for name in ["paper+mixup", "symmetry", "RandomRotate", "RandomSignFlip", "TwoViews", "aligned"]:
        assert name in out


def test_show_augment_writes_a_grid(tiny_store, tmp_path, capsys):
    path, ws = tiny_store
    out = tmp_path / "gallery.png"  # (a missing directory is refused: tests/test_corrupt_inputs.py)
    assert main(["show-augment", str(path), "--augment", "symmetry", "--n", "3", "--k", "2", "--cell", "32", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    img = np.asarray(Image.open(out))
    factor, gap = 4, 4  # 32 px cells of 8x8 renders
    assert img.shape == (3 * 32 + 4 * gap, 3 * 32 + 5 * gap)
    # symmetry preset: every augmented cell equals the original cell of its row
    first = img[gap : gap + 32, gap : gap + 32].astype(int)
    second = img[gap : gap + 32, 2 * gap + 32 + gap : 2 * gap + 64 + gap].astype(int)
    assert np.abs(first - second).max() <= 1
    # the original cell is the INR's render, upscaled
    rows = sorted(np.random.default_rng(0).choice(np.arange(6), size=3, replace=False).tolist())
    ref = (render_image(ws[rows[0]], 8, 8).clamp(0, 1) * 255).round()[0, 0].numpy()
    assert np.abs(first[::factor, ::factor] - ref).max() <= 1


def test_show_augment_errors(tiny_store, tmp_path, capsys):
    path, _ = tiny_store
    assert main(["show-augment", str(path), "--augment", "bogus", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown augmentation preset" in capsys.readouterr().err
    assert main(["show-augment", str(path), "--split", "test", "--out", str(tmp_path / "x.png")]) == 2
    assert main(["show-augment", str(tmp_path / "missing"), "--out", str(tmp_path / "x.png")]) == 2
