import gzip
import struct

import numpy as np
import pytest

from ssl_ws import SslWsError
from ssl_ws.data.sources import load_source, read_idx


def write_idx(path, arr, gz=True):
    arr = np.asarray(arr, dtype=np.uint8)
    data = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def make_idx_dir(d, n_train=6, n_test=4, size=(28, 28)):
    rng = np.random.default_rng(0)
    d.mkdir(parents=True, exist_ok=True)
    x_tr = rng.integers(0, 256, (n_train, *size), dtype=np.uint8)
    x_te = rng.integers(0, 256, (n_test, *size), dtype=np.uint8)
    y_tr, y_te = np.arange(n_train) % 10, (np.arange(n_test) + 3) % 10
    write_idx(d / "train-images-idx3-ubyte.gz", x_tr)
    write_idx(d / "train-labels-idx1-ubyte.gz", y_tr)
    write_idx(d / "t10k-images-idx3-ubyte.gz", x_te)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", y_te)
    return np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te])


def test_idx_fashion_mnist_layout(tmp_path):
    x, y = make_idx_dir(tmp_path / "fm")
    src = load_source("fashion-mnist", data_dir=str(tmp_path / "fm"))
    assert src.images.shape == (10, 1, 28, 28) and src.images.dtype == np.float32
    np.testing.assert_allclose(src.images[:, 0], x / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(src.labels, y)
    assert src.class_names[0] == "T-shirt/top" and len(src.class_names) == 10
    assert src.description["counts"] == {"train": 6, "t10k": 4}
    assert len(load_source("mnist", data_dir=str(tmp_path / "fm"), limit=3)) == 3


def test_idx_corrupt_and_missing(tmp_path):
    make_idx_dir(tmp_path / "fm")
    f = tmp_path / "fm" / "train-images-idx3-ubyte.gz"
    raw = gzip.open(f).read()
    gzip.open(f, "wb").write(raw[:-100])
    with pytest.raises(SslWsError, match="truncated or corrupt"):
        load_source("fashion-mnist", data_dir=str(tmp_path / "fm"))
    f.write_bytes(b"not gzip at all")
    with pytest.raises(SslWsError, match="cannot read IDX"):
        read_idx(f)
    with pytest.raises(SslWsError, match="not found"):
        load_source("fashion-mnist", data_dir=str(tmp_path / "none"))


def test_digits_scaled():
    src = load_source("digits", limit=50)
    assert src.images.shape == (50, 1, 8, 8)
    assert src.images.max() == 1.0 and src.images.min() == 0.0
    assert src.labels[:10].tolist() == list(range(10))


def test_npz_and_npy(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)  # NHWC rgb
    np.savez(tmp_path / "a.npz", images=x, labels=np.array([0, 1, 2, 1, 0]))
    src = load_source(str(tmp_path / "a.npz"))
    assert src.images.shape == (5, 3, 6, 7)
    np.testing.assert_allclose(src.images[2, 1], x[2, :, :, 1] / 255.0, atol=1e-7)
    assert src.labels.tolist() == [0, 1, 2, 1, 0] and src.channels == 3
    np.save(tmp_path / "b.npy", rng.uniform(0, 1, (4, 9, 9)).astype(np.float32))
    np.save(tmp_path / "b_labels.npy", np.array([1, 1, 0, 0]))
    src = load_source(str(tmp_path / "b.npy"))
    assert src.images.shape == (4, 1, 9, 9) and src.labels.tolist() == [1, 1, 0, 0]
    np.save(tmp_path / "c.npy", np.full((2, 4, 4), 3.0))
    with pytest.raises(SslWsError, match=r"\[0, 1\]"):
        load_source(str(tmp_path / "c.npy"))
    (tmp_path / "d.npz").write_bytes(b"garbage")
    with pytest.raises(SslWsError, match="cannot read"):
        load_source(str(tmp_path / "d.npz"))
    with pytest.raises(SslWsError, match="not found"):
        load_source(str(tmp_path / "missing.npz"))
    with pytest.raises(SslWsError, match="unknown source"):
        load_source("imagenet")


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    arrays = {}
    for cls in ("cat", "dog"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            a = rng.integers(0, 256, (10, 12), dtype=np.uint8)
            Image.fromarray(a).save(tmp_path / "imgs" / cls / f"{i}.png")
            arrays[(cls, i)] = a
    src = load_source(str(tmp_path / "imgs"))
    assert src.class_names == ["cat", "dog"] and src.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert src.images.shape == (6, 1, 10, 12)
    np.testing.assert_allclose(src.images[4, 0], arrays[("dog", 1)] / 255.0, atol=1e-7)
    Image.fromarray(rng.integers(0, 256, (11, 12), dtype=np.uint8)).save(tmp_path / "imgs" / "dog" / "odd.png")
    with pytest.raises(SslWsError, match="mixed sizes"):
        load_source(str(tmp_path / "imgs"))
    (tmp_path / "imgs" / "dog" / "odd.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(SslWsError, match="cannot read image"):
        load_source(str(tmp_path / "imgs"))
