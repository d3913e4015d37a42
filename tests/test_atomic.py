"""ssl_ws.atomic: a failed write leaves the old target and no temporaries behind."""

import json
import os
import stat

import numpy as np
import pytest

from ssl_ws.atomic import atomic_directory, atomic_write


def test_atomic_write_replaces_on_success_and_keeps_old_on_failure(tmp_path):
    target = tmp_path / "sub" / "r.json"
    with atomic_write(target) as f:
        json.dump({"v": 1}, f)
    assert json.loads(target.read_text()) == {"v": 1}
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~_umask()  # as open() would give
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write('{"v": 2')  # half written, then the writer dies
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["r.json"]


def test_atomic_write_binary_with_numpy(tmp_path):
    target = tmp_path / "c.npz"
    with atomic_write(target, "wb") as f:
        np.savez(f, a=np.arange(3))
    assert np.load(target)["a"].tolist() == [0, 1, 2]  # np.savez did not append a second ".npz"
    with pytest.raises(ValueError):
        with atomic_write(target, "a"):
            pass


def test_atomic_directory_swaps_whole_trees(tmp_path):
    out = tmp_path / "store"
    with atomic_directory(out) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_directory(out) as tmp:
            (tmp / "b.txt").write_text("half")
            raise KeyboardInterrupt
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    with atomic_directory(out) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no .tmp / .old siblings left


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m
