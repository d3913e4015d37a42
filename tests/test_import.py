import argparse
import json

import numpy as np
import pytest
import torch

from ssl_ws import INRSpec, SslWsError, render_image
from ssl_ws.cli import main
from ssl_ws.data import load_store
from ssl_ws.data.importers import import_inrs, parse_view
from tests.conftest import random_ws

H = W = 6


def dwsnets_render(sd, size=H, swap=False):
    """Render a state dict the way the DWSNets code does (written here from its description):
    numpy meshgrid of linspace(-1, 1, size) with the default 'xy' indexing, flattened row-major,
    stacked as (x, y), Sequential of Linear + sin(30 .), output + 0.5, reshaped to (size, size)."""
    lin = np.linspace(-1, 1, size)
    gx, gy = np.meshgrid(lin, lin)
    pts = np.stack([gx.flatten(), gy.flatten()]).T
    if swap:  # an 'ij' grid: x runs down the rows
        pts = pts[:, ::-1].copy()
    h = torch.tensor(pts, dtype=torch.float32)
    n = len([k for k in sd if k.endswith(".weight")])
    for i in range(n):
        h = h @ sd[f"seq.{i}.weight"].t() + sd[f"seq.{i}.bias"]
        if i < n - 1:
            h = torch.sin(30.0 * h)
    return (h + 0.5).view(size, size)


def write_dwsnets(root, n=6, spec=None, seed=0):
    spec = spec or INRSpec((2, 16, 16, 1))
    ws = random_ws(spec, batch=n, seed=seed)
    (root / "inrs").mkdir(parents=True, exist_ok=True)
    sds, paths = [], []
    for i in range(n):
        sd = ws.to_state_dict(i)
        torch.save(sd, root / "inrs" / f"img_{i}.pth")
        sds.append(sd)
        paths.append(f"inrs/img_{i}.pth")
    labels = [i % 3 for i in range(n)]
    splits = {"train": {"path": paths[:4], "label": labels[:4]}, "test": {"path": paths[4:], "label": labels[4:]}}
    (root / "splits.json").write_text(json.dumps(splits))
    return sds, labels


def test_dwsnets_layout_renders_the_same_image(tmp_path):
    sds, labels = write_dwsnets(tmp_path / "d")
    assert main(["import", "dwsnets", str(tmp_path / "d" / "splits.json"), "--out", str(tmp_path / "s"),
                 "--image-size", f"{H}x{W}"]) == 0
    st = load_store(tmp_path / "s")
    assert len(st) == 6 and st.labels.tolist() == labels and st.view_ids.tolist() == [0] * 6
    assert len(st.splits["train"]) == 4 and len(st.splits["test"]) == 2
    assert st.meta["imported"]["swapped_xy"] is False and st.image_size == (H, W)
    ours = render_image(st.weights(np.arange(6)), H, W)[:, 0]
    for i, sd in enumerate(sds):
        ref = dwsnets_render(sd)
        torch.testing.assert_close(ours[i], ref, atol=1e-5, rtol=0)
        assert not torch.allclose(ours[i], ref.t(), atol=1e-2)  # the test can see a transpose


def test_swap_xy_converts_an_ij_grid_exactly(tmp_path):
    sds, _ = write_dwsnets(tmp_path / "d", n=2)
    kw = import_inrs(tmp_path / "d", "dwsnets", image_size=(H, W), swap_xy=True)
    spec = INRSpec.from_dict(kw["meta"]["spec"])
    from ssl_ws import WeightSpace

    ours = render_image(WeightSpace.from_flat(torch.from_numpy(kw["params"]), spec), H, W)[:, 0]
    for i, sd in enumerate(sds):
        torch.testing.assert_close(ours[i], dwsnets_render(sd, swap=True), atol=1e-5, rtol=0)
    assert kw["meta"]["imported"]["swapped_xy"] is True


def test_multiview_layout(tmp_path):
    spec = INRSpec((2, 8, 8, 1))
    ws = random_ws(spec, batch=9, seed=3)
    root = tmp_path / "mv"
    paths = {}
    r = 0
    for img in range(3):
        for view in range(3):
            rel = f"fmnist/img_{img}/view_{view}.pth"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            sd = ws.to_state_dict(r)
            sd["label"] = torch.tensor(img + 4)
            torch.save(sd, root / rel)
            paths[(img, view)] = rel
            r += 1
    splits = {"train": [paths[(0, v)] for v in (2, 0, 1)] + [paths[(1, v)] for v in range(3)],
              "test": [paths[(2, v)] for v in range(3)]}
    (root / "splits.json").write_text(json.dumps(splits))
    assert main(["import", "multiview", str(root), "--out", str(tmp_path / "s")]) == 0
    st = load_store(tmp_path / "s")
    assert st.object_ids.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert st.view_ids.tolist() == [0, 1, 2] * 3
    assert st.labels.tolist() == [4] * 3 + [5] * 3 + [6] * 3
    assert st.splits["train"].tolist() == [0, 1] and st.splits["test"].tolist() == [2]
    np.testing.assert_array_equal(st.params[5], ws.to_flat()[5].numpy())  # img 1, view 2
    assert np.isnan(st.psnr).all()


def test_view_parse_rules():
    assert parse_view("a/img_12/3.pth") == ("a/img_12/*", 3)
    assert parse_view("x/obj7_view-4.pth") == ("x/obj7_view*", 4)
    assert parse_view("x/Views2/obj7.pth") == ("x/view*/obj7", 2)
    assert parse_view("runs/5/v1/ckpt.pth", r"/v(\d+)/") == ("runs/5/v*/ckpt", 1)
    with pytest.raises(SslWsError):
        parse_view("a/b/c.pth")


def test_bad_inputs(tmp_path):
    write_dwsnets(tmp_path / "d")
    # another architecture among the INRs
    other = random_ws(INRSpec((2, 8, 16, 1)), batch=1).to_state_dict(0)
    torch.save(other, tmp_path / "d" / "inrs" / "img_5.pth")
    with pytest.raises(SslWsError, match="one architecture"):
        import_inrs(tmp_path / "d", "dwsnets")
    # a pickle that is not plain tensors
    torch.save({"seq.0.weight": torch.zeros(16, 2), "extra": argparse.Namespace(a=1)}, tmp_path / "d" / "inrs" / "img_5.pth")
    with pytest.raises(SslWsError, match="weights_only"):
        import_inrs(tmp_path / "d", "dwsnets")
    # a splits file naming missing files
    (tmp_path / "d" / "inrs" / "img_5.pth").unlink()
    with pytest.raises(SslWsError, match="1 of 6 files .* missing"):
        import_inrs(tmp_path / "d", "dwsnets")
    # the wrong layout
    write_dwsnets(tmp_path / "e")
    with pytest.raises(SslWsError, match="DWSNets layout"):
        import_inrs(tmp_path / "e", "multiview")
    # existing output
    (tmp_path / "out").mkdir()
    assert main(["import", "dwsnets", str(tmp_path / "e"), "--out", str(tmp_path / "out")]) == 2
