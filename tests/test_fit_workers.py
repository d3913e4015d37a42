"""`ssl-ws fit --workers N`: several single-thread processes, one store byte for byte."""

import numpy as np
import pytest

from ssl_ws.cli import main
from ssl_ws.errors import SslWsError
from ssl_ws.inr.chunked import FitJob, default_workers, fit_chunked, plan_chunks
from ssl_ws.inr.fit import inr_keys

FILES = ["meta.json", "params.npy", "labels.npy", "object_ids.npy", "view_ids.npy", "psnr.npy", "splits.json"]
TINY = ["fit", "--source", "digits", "--limit", "40", "--views", "2", "--steps", "20", "--chunk", "16",
        "--device", "cpu"]


def test_two_workers_write_the_single_process_store_and_resume(tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(TINY + ["--workers", "1", "--out", str(one)]) == 0
    # stopped after one chunk per worker, then resumed with the same command
    assert main(TINY + ["--workers", "2", "--out", str(two), "--max-chunks", "1"]) == 3
    assert not two.exists() and len(list((tmp_path / "two.partial").glob("chunk_*.npz"))) == 2
    capsys.readouterr()
    assert main(TINY + ["--workers", "2", "--out", str(two)]) == 0
    cap = capsys.readouterr()
    assert "2 worker processes" in cap.err and "2 saved" in cap.err and "80/80" in cap.err
    assert not (tmp_path / "two.partial").exists()
    for f in FILES:
        assert (one / f).read_bytes() == (two / f).read_bytes(), f


@pytest.mark.parametrize("micro_batch", [None, 8])
def test_an_inr_fit_is_bit_identical_in_any_batch(micro_batch):
    import torch
    from sklearn.datasets import load_digits

    from ssl_ws.inr.fit import fit_inrs

    images = torch.tensor(load_digits().images[:40] / 16.0, dtype=torch.float32).unsqueeze(1)
    keys = inr_keys(0, torch.arange(40), torch.zeros(40, dtype=torch.int64))

    def fit(lo, hi):  # INRs leave the batch at different steps (170 to 300), the last one alone
        r = fit_inrs(images[lo:hi], seeds=keys[lo:hi], recipe="dwsnets", steps=300, target_psnr=30.0,
                     micro_batch=micro_batch)
        return torch.cat([r.ws.to_flat(), r.psnr[:, None], r.steps[:, None].float()], dim=1)

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # and the thread count does not matter either
    try:
        full = fit(0, 40)
    finally:
        torch.set_num_threads(threads)
    assert len(set(full[:, -1].tolist())) > 5  # the batch shrank many times
    parts = torch.cat([fit(lo, hi) for lo, hi in [(0, 1), (1, 8), (8, 21), (21, 40)]])
    assert torch.equal(full, parts)


def test_a_failing_worker_is_one_line(tmp_path):
    images = np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32)
    index = np.arange(8, dtype=np.int64)
    keys = inr_keys(0, index, np.zeros(8, dtype=np.int64)).numpy()
    job = FitJob(spec={"layer_sizes": [2, 8, 1], "activation": "sine", "w0": 30.0, "output_offset": 0.5},
                 recipe="siren", steps=3, lr=1e-3, target_psnr=40.0)
    (tmp_path / "chunk_000000004_000000008.npz").mkdir()  # worker 2 cannot save its chunk (a directory in the way)
    with pytest.raises(SslWsError) as err:
        fit_chunked(job, images, index, keys, tmp_path, chunk=4, workers=2)
    msg = str(err.value)
    assert msg.startswith("fit worker 2 of 2 failed: IsADirectoryError") and "\n" not in msg


def test_plan_chunks():
    assert plan_chunks(10, 4, 1) == [[(0, 4), (4, 8), (8, 10)]]
    assert plan_chunks(10, 4, 2) == [[(0, 4), (4, 5)], [(5, 9), (9, 10)]]
    assert plan_chunks(3, 4, 8) == [[(0, 1)], [(1, 2)], [(2, 3)]]  # never an idle worker
    # saved chunks are skipped; the rows left are shared evenly, across gaps
    plan = plan_chunks(20, 8, 2, saved=[(0, 4), (8, 12)])
    assert plan == [[(4, 8), (12, 14)], [(14, 20)]]
    assert plan_chunks(8, 4, 2, saved=[(0, 4), (4, 8)]) == []
    for n, chunk, workers, saved in [(100, 7, 3, [(10, 17), (50, 60)]), (33, 40, 4, []), (5, 1, 2, [(4, 5)])]:
        plan = plan_chunks(n, chunk, workers, saved)
        rows = sorted(r for p in plan for lo, hi in p for r in range(lo, hi)) + [r for lo, hi in saved for r in range(lo, hi)]
        assert sorted(rows) == list(range(n))
        assert all(hi - lo <= chunk for p in plan for lo, hi in p)
        sizes = [sum(hi - lo for lo, hi in p) for p in plan]
        assert max(sizes) - min(sizes) <= 1


def test_default_workers(monkeypatch):
    monkeypatch.setattr("ssl_ws.inr.chunked.available_cpus", lambda: 4)
    assert default_workers("cpu", 512, 200, 28 * 28) == 4  # 80 M pixel-steps
    assert default_workers("cpu", 128, 200, 28 * 28) == 2  # 20 M: one process per 10 M
    assert default_workers("cpu", 120, 5, 8 * 8) == 1  # a fit of a second: no processes to start
    assert default_workers("cuda", 10_000, 1000, 784) == 1 and default_workers("cuda:1", 10_000, 1000, 784) == 1


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_workers_is_one_line(tmp_path, capsys, value):
    assert main(["fit", "--workers", value, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --workers must be a positive integer or 'auto'") and "\n" not in err
    assert not (tmp_path / "x.partial").exists()
