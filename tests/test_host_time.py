"""What a training step does to spend less host time gives the same results (issue 34).

* the training rows held on the device (``data.resident``) give the batches the file gives;
* the normalizer's one operation on a flat batch gives the per-layer operations' values, bit for bit;
* an identity augmentation draws no generator;
* torch's fused optimizer kernel is chosen on CUDA or when asked (``optim.fused``);
* the checkpoint callbacks' state keys stay Lightning's.
"""

import numpy as np
import pytest
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from _train_helpers import SPEC, cfg, tiny_store
from conftest import random_ws
from ssl_ws import devices
from ssl_ws.augment import preset
from ssl_ws.data import load_store
from ssl_ws.data import dataset as ds
from ssl_ws.data.dataset import BatchIndexSampler, ParamsBatchDataset, ResidentRows
from ssl_ws.errors import SslWsError
from ssl_ws.models.normalize import WeightNormalizer
from ssl_ws.train import base
from ssl_ws.train.checkpointing import RunCheckpoint
from ssl_ws.train.datamodule import INRDataModule
from ssl_ws.train.runs import run_pretrain, run_train
from ssl_ws.weights import WeightSpace


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("host") / "store")


# ------------------------------------------------------------------------------- resident rows
@pytest.mark.parametrize("unit", ["rows", "pairs"])
def test_resident_rows_gather_what_the_file_gives(store, unit):
    st = load_store(store)
    train = st.rows("train")
    sampler = BatchIndexSampler(train, 8, unit=unit, object_ids=st.object_ids, seed=3)
    from_file, held = ParamsBatchDataset(st), ResidentRows(st, train, "cpu")
    assert set(ParamsBatchDataset(st, gather=False)[sampler.batch(0, 0)]) <= {"rows", "rows2", "key"}
    for i in range(len(sampler)):
        spec = sampler.batch(1, i)
        a = from_file[spec]
        params, labels = held.gather(a["rows"])
        assert torch.equal(params, a["params"]) and torch.equal(labels, a["labels"])
        if unit == "pairs":
            assert torch.equal(held.gather(a["rows2"])[0], a["params2"])


def test_resident_rows_are_held_only_where_they_fit(store, monkeypatch):
    st = load_store(store)
    rows = np.arange(10)
    need = ResidentRows.nbytes(st, rows)
    monkeypatch.setattr(ds, "available_memory", lambda device: int(need / ResidentRows.MAX_SHARE))
    assert ResidentRows.fits(st, rows, "cpu")
    monkeypatch.setattr(ds, "available_memory", lambda device: int(need / ResidentRows.MAX_SHARE) - 1)
    assert not ResidentRows.fits(st, rows, "cpu")
    monkeypatch.setattr(ds, "available_memory", lambda device: None)  # unknown: read from the file
    assert not ResidentRows.fits(st, rows, "cpu")
    dm = INRDataModule(st, rows, batch_size=4)
    assert dm._hold_rows() is None
    dm.resident = True  # asked for: held whatever the estimate says
    assert isinstance(dm._hold_rows(), ResidentRows)
    dm.resident = False
    assert dm._hold_rows() is None


def test_resident_rows_that_do_not_fit_fail_in_one_line(store, monkeypatch):
    def oom(*a, **k):
        raise RuntimeError("CUDA out of memory. Tried to allocate 9.00 GiB")

    monkeypatch.setattr(ResidentRows, "__init__", oom)
    dm = INRDataModule(load_store(store), np.arange(10), batch_size=4, resident=True)
    with pytest.raises(SslWsError, match=r"data.resident=true: the 10 training rows .* do not fit the memory of cpu"):
        dm._hold_rows()


def _records(res):
    return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in res["history"]]


@pytest.mark.parametrize("kind, extra", [
    ("train", ("augment.mixup=plain",)),
    ("pretrain", ("ssl.positives=two_views",)),  # pairs: the second fit gathered on the device too
])
def test_a_run_on_resident_rows_is_the_run_on_the_file(store, tmp_path, kind, extra):
    import pytorch_lightning as pl

    held = []

    class Look(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, i):
            held.append(trainer.datamodule.resident_rows is not None)

    run = run_train if kind == "train" else run_pretrain
    out = []
    for resident in ("true", "false"):
        res = run(cfg(kind, store, tmp_path / resident, "trainer.max_steps=6", "eval.every_n_steps=3",
                      f"data.resident={resident}", *extra), callbacks=[Look()])
        out.append(_records(res))
    assert held == [True] * 6 + [False] * 6
    assert out[0] == out[1] and len(out[0]) == 2


# --------------------------------------------------------------------------- flat normalizer
def test_normalizing_a_flat_batch_gives_the_per_layer_values_bit_for_bit():
    ws = random_ws(SPEC, 32, seed=1)
    norm = WeightNormalizer.fit(ws, SPEC)
    flat = WeightSpace.from_flat(ws.to_flat(), SPEC)
    assert flat.flat is not None and ws.flat is None and flat.replace().flat is None and flat.map(torch.clone).flat is None
    a, b = norm(flat), norm(ws)  # one operation on the flat tensor / one per layer tensor
    assert a.flat is not None and b.flat is None
    assert all(torch.equal(x, y) for x, y in zip(a.weights + a.biases, b.weights + b.biases))
    d = norm(WeightSpace.from_flat(ws.to_flat().double(), SPEC))  # another dtype: cast as before
    assert d.dtype == torch.float64 and torch.equal(d.weights[1], norm(ws.to(torch.float64)).weights[1])


# -------------------------------------------------------------------------------- generator
def test_only_an_identity_pipeline_needs_no_generator():
    assert preset("none").is_identity
    assert not preset("weak").is_identity
    assert not preset("none", mixup="plain").is_identity


# -------------------------------------------------------------------------------- optimizer
def test_the_fused_optimizer_kernel_on_cuda_or_when_asked():
    cpu = [torch.nn.Parameter(torch.zeros(3))]
    assert not base.use_fused_kernel(cpu) and base.use_fused_kernel(cpu, True) and not base.use_fused_kernel(cpu, False)
    assert not base.use_fused_kernel([torch.nn.Parameter(torch.zeros(3, device="meta"))])
    assert not base.use_fused_kernel([])
    if torch.cuda.is_available():
        assert base.use_fused_kernel([torch.nn.Parameter(torch.zeros(3, device="cuda"))])


@pytest.mark.parametrize("fused, expect", [("true", True), ("null", None), ("false", None)])
def test_a_run_steps_with_the_optimizer_kernel_it_was_given(store, tmp_path, fused, expect):
    seen = []
    import pytorch_lightning as pl

    class Look(pl.Callback):
        def on_train_start(self, trainer, module):
            seen.append(trainer.optimizers[0].defaults.get("fused"))

    res = run_train(cfg("train", store, tmp_path, "trainer.max_steps=3", f"optim.fused={fused}"), callbacks=[Look()])
    assert seen == [expect] and np.isfinite(res["history"][-1]["train_loss"])


# ------------------------------------------------------------------------------- callbacks
def test_checkpoint_state_keys_stay_lightnings_and_are_kept(tmp_path):
    kw = dict(dirpath=str(tmp_path), monitor="val/acc", mode="max", save_top_k=1)
    ours, theirs = RunCheckpoint(**kw), ModelCheckpoint(**kw)
    assert ours.state_key == theirs.state_key
    assert ours.state_key is ours.state_key  # computed once


# ----------------------------------------------------------------------------- metric sums
def test_metric_sums_weigh_steps_by_their_samples_and_survive_a_checkpoint():
    sums = base.MetricSums()
    sums.add(4, {"loss": torch.tensor(1.0), "global_batch": 8.0})
    sums.add(2, {"loss": torch.tensor(4.0), "global_batch": 4.0})
    assert isinstance(sums.sums["loss"], torch.Tensor) and isinstance(sums.sums["global_batch"], float)
    assert sums.means() == {"loss": 2.0, "global_batch": 20.0 / 3}
    again = base.MetricSums.from_state(sums.state(), "cpu")
    again.add(6, {"loss": torch.tensor(0.0), "global_batch": 2.0})
    assert again.means() == {"loss": 1.0, "global_batch": 52.0 / 12}
    assert base.MetricSums().means() == {}


# ------------------------------------------------------------------------- divergence guard
def test_the_divergence_guard_reads_the_summed_loss_or_watches_each_step():
    from types import SimpleNamespace

    from ssl_ws.train.callbacks import DivergenceGuard, TrainingDiverged

    trainer = SimpleNamespace(global_step=3)
    summing = SimpleNamespace(epoch_sums=base.MetricSums())
    guard = DivergenceGuard(every=10)
    summing.epoch_sums.add(4, {"loss": torch.tensor(1.0)})
    guard.on_train_batch_end(trainer, summing, torch.tensor(1.0), None, 0)
    assert guard._bad is None  # nothing computed per step: the module sums its loss
    guard.check(trainer, summing)
    summing.epoch_sums.add(4, {"loss": torch.tensor(float("nan"))})
    summing.epoch_sums.add(4, {"loss": torch.tensor(2.0)})  # later finite steps do not hide it
    with pytest.raises(TrainingDiverged):
        guard.on_save_checkpoint(trainer, summing, {})
    plain = SimpleNamespace()  # a module that does not sum its loss: each step's loss is watched
    guard = DivergenceGuard(every=10)
    guard.on_train_batch_end(trainer, plain, torch.tensor(float("inf")), None, 0)
    guard.on_train_batch_end(trainer, plain, {"loss": torch.tensor(1.0)}, None, 1)
    with pytest.raises(TrainingDiverged):
        guard.on_train_epoch_end(trainer, plain)


def test_available_host_memory_respects_a_control_groups_limit(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemAvailable:   20000000 kB\n")
    limit, usage = tmp_path / "memory.max", tmp_path / "memory.current"
    monkeypatch.setattr(devices, "MEMINFO", str(meminfo))
    monkeypatch.setattr(devices, "CGROUP_LIMITS", ((str(limit), str(usage)),))
    assert devices.available_memory("cpu") == 20000000 * 1024  # no control group files: the machine's
    limit.write_text("max\n"), usage.write_text("1000\n")
    assert devices.available_memory("cpu") == 20000000 * 1024  # no limit
    limit.write_text(f"{8 * 2**30}\n"), usage.write_text(f"{5 * 2**30}\n")
    assert devices.available_memory("cpu") == 3 * 2**30  # a batch job's 8 GiB, 5 taken
    usage.write_text(f"{9 * 2**30}\n")
    assert devices.available_memory("cpu") == 0
    assert devices.available_memory("meta") is None


# ----------------------------------------------------------------- where parameters are drawn
def test_augmentation_parameters_are_drawn_where_augment_draws_says():
    cuda = torch.device("cuda:1")
    assert base.draw_device("auto", "cpu") == torch.device("cpu") and base.draw_device("auto", cuda) == cuda
    assert base.draw_device("host", cuda) == torch.device("cpu") and base.draw_device("device", "meta") == torch.device("meta")
    a = torch.rand(5, generator=base.step_generator(1, 2, 3, 0))
    b = torch.rand(5, generator=base.step_generator(1, 2, 3, 0, device="cpu"))
    assert torch.equal(a, b) and not torch.equal(a, torch.rand(5, generator=base.step_generator(1, 2, 4, 0)))


def test_an_unknown_draw_place_is_one_line(store, tmp_path):
    with pytest.raises(SslWsError, match=r"augment.draws must be one of \['auto', 'host', 'device'\]"):
        cfg("train", store, tmp_path, "augment.draws=gpu")


def test_transforms_skip_reading_their_own_draws_but_the_kernels_check_a_users():
    from ssl_ws.augment import functional as F

    ws = random_ws(SPEC, 4, seed=2)
    with pytest.raises(SslWsError, match="signs"):
        F.sign_flip(ws, [torch.full((4, h), 2.0) for h in SPEC.hidden_sizes])
    with pytest.raises(SslWsError, match="non-zero"):
        F.scale(ws, torch.zeros(4))
    flipped = F.sign_flip(ws, [torch.full((4, h), -1.0) for h in SPEC.hidden_sizes], check=False)
    assert torch.equal(flipped.biases[0], -ws.biases[0])
