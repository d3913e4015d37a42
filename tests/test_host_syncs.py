"""No host syncs in the training step: what would stall a GPU, counted on a CPU.

On a CUDA device, reading a tensor's value on the host (``.item()``, ``.tolist()``,
``.cpu()``, ``.numpy()``, ``bool(t)``, ``float(t)``, ``int(t)``) or asking for a
data-dependent shape (``nonzero``, ``masked_select``, ``unique``, indexing by a boolean
mask) waits for every kernel queued before it: one such call per step serializes the
host and the GPU. A CPU has no queue, so the test marks the tensors that live on the
training device instead: every tensor of the batch that Lightning moves to the device
(all but the module's ``HOST_BATCH_KEYS``) is re-typed as :class:`DeviceTracked`, a
``torch.Tensor`` subclass whose ``__torch_function__`` passes the type on to everything
computed from it (activations, loss, mixed weights) and records each syncing call.
Tensors drawn from a CPU step generator (``augment.draws=host``) stay plain: they are host
data on a GPU too, copied to the device without a sync. On CUDA the parameters are drawn on
the device (``augment.draws=auto``): the ``draws_on_the_device`` tests mark every draw as a
device tensor too, so that a transform reading its own parameters on the host is counted
(the kernels' validity checks did, once per step and hidden layer, until the transforms
skipped them for what they drew themselves).

One step of every kind -- supervised without and with plain / permuted MixUp, fine-tuning,
SimCLR, VICReg, Barlow Twins, BYOL -- runs inside a real Lightning fit (logging included) and
must record no sync at all: the losses and accuracies are logged as
device tensors, which Lightning reduces at the end of the epoch or at logging time.
Aligned MixUp needs one (its assignment solver is scipy's, on the host): it is counted
separately and must stay at one transfer of the cost matrices per matching round. A batch
gathered from training rows held on the device (``data.resident``) is gathered without one.
"""

import traceback
from unittest import mock

import pytest
import torch

from _train_helpers import cfg, tiny_store
from ssl_ws.train import base
from ssl_ws.train.runs import run_pretrain, run_train
from ssl_ws.train.simclr import SimCLRModule
from ssl_ws.train.supervised import SupervisedModule

SYNCS = {"item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__", "nonzero",
         "argwhere", "masked_select", "unique", "unique_consecutive", "__array__"}


class DeviceTracked(torch.Tensor):
    """A tensor "on the device": records host syncs of itself and of what is computed from it."""

    calls = []
    literal_host_moves_only = False

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        sync = name in SYNCS
        if name == "to":  # .to("cpu") / .to(torch.device("cpu")) / .to(other_cpu_tensor)
            dest = [a for a in list(args[1:]) + list(kwargs.values()) if isinstance(a, (str, torch.device))]
            if cls.literal_host_moves_only:  # see draws_on_the_device
                dest = [d for d in dest if isinstance(d, str)]
            sync = any(torch.device(d).type == "cpu" for d in dest)
        if name == "__getitem__" and len(args) > 1:
            idx = args[1] if isinstance(args[1], tuple) else (args[1],)
            sync = any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in idx)
        if sync:
            frame = traceback.extract_stack(limit=6)[-2]
            cls.calls.append(f"{name} at {frame.filename.split('ssl_ws/')[-1]}:{frame.lineno}")
        with torch._C.DisableTorchFunctionSubclass():
            out = func(*args, **kwargs)
        return torch._tensor._convert(out, cls) if name not in SYNCS else out

    def __deepcopy__(self, memo):  # Lightning copies logged values (checkpoints): as plain tensors
        return self.as_subclass(torch.Tensor).__deepcopy__(memo)


def counting(step):
    """``training_step`` that marks the device-side batch and counts the syncs of that one step."""

    def wrapped(self, batch, batch_idx):
        host = getattr(self, "HOST_BATCH_KEYS", ())
        batch = {k: v if k in host or not isinstance(v, torch.Tensor) else v.as_subclass(DeviceTracked)
                 for k, v in batch.items()}
        DeviceTracked.calls.clear()
        out = step(self, batch, batch_idx)  # the loss, or {"loss", ...} (SimCLR also returns its projections)
        wrapped.calls = list(DeviceTracked.calls)
        if isinstance(out, dict):
            return {k: v.as_subclass(torch.Tensor) for k, v in out.items()}
        return out.as_subclass(torch.Tensor)

    wrapped.calls = None
    return wrapped


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory.mktemp("syncs") / "store")


#: where lightly's NT-Xent indexes by a boolean mask (see the SimCLR test)
LIGHTLY_NTXENT = "lightly/loss/ntx_ent_loss.py"
ONE_STEP = ("trainer.max_steps=1", "eval.every_n_steps=1000")


@pytest.mark.parametrize("preset", ["none", "symmetry"])
def test_supervised_step_has_no_host_sync(store, tmp_path, preset):
    step = counting(SupervisedModule.training_step)
    with mock.patch.object(SupervisedModule, "training_step", step):
        run_train(cfg("train", store, tmp_path, f"augment.preset={preset}", "supervised.mixup=none", *ONE_STEP))
    assert step.calls == [], step.calls


@pytest.mark.parametrize("preset", ["none", "paper"])
def test_simclr_step_has_no_host_sync_but_lightlys(store, tmp_path, preset):
    step = counting(SimCLRModule.training_step)
    with mock.patch.object(SimCLRModule, "training_step", step):
        # no augmentation needs two fits as positives (two copies of one fit are refused)
        positives = "ssl.positives=two_views" if preset == "none" else "ssl.positives=same_fit"
        run_pretrain(cfg("pretrain", store, tmp_path, f"augment.preset={preset}", positives, *ONE_STEP))
    ours = [c for c in step.calls if LIGHTLY_NTXENT not in c]
    assert ours == [], ours
    # lightly's NTXentLoss drops the self-similarities with a boolean mask (logits[~diag_mask]):
    # two syncs per step inside lightly, counted so that a lightly that drops them shows here
    assert len(step.calls) - len(ours) <= 2, step.calls


@pytest.mark.parametrize("mixup", ["plain", "permute"])
def test_supervised_step_with_mixup_has_no_host_sync(store, tmp_path, mixup):
    step = counting(SupervisedModule.training_step)
    with mock.patch.object(SupervisedModule, "training_step", step):
        run_train(cfg("train", store, tmp_path, "augment.preset=none", f"supervised.mixup={mixup}", *ONE_STEP))
    assert step.calls == [], step.calls


def test_finetune_step_has_no_host_sync(store, tmp_path):
    pre = run_pretrain(cfg("pretrain", store, tmp_path / "pre", *ONE_STEP))
    step = counting(SupervisedModule.training_step)
    with mock.patch.object(SupervisedModule, "training_step", step):
        run_train(cfg("train", store, tmp_path / "ft", "augment.preset=none", "supervised.encoder_lr_factor=0.1",
                      *ONE_STEP), pretrained=pre["last_checkpoint"])
    assert step.calls == [], step.calls


@pytest.mark.parametrize("objective", ["vicreg", "barlowtwins", "byol"])
def test_other_objectives_steps_have_no_host_sync(store, tmp_path, objective):
    from ssl_ws.train.two_views import TwoViewModule

    step = counting(TwoViewModule.training_step)
    with mock.patch.object(TwoViewModule, "training_step", step):
        run_pretrain(cfg("pretrain", store, tmp_path, f"ssl.objective={objective}", *ONE_STEP))
    ours = [c for c in step.calls if "lightly/loss/" not in c]
    assert ours == [], ours  # lightly's VICReg drops the covariance diagonal with a boolean mask (2 syncs)
    assert len(step.calls) - len(ours) <= 2, step.calls


def test_aligned_mixup_syncs_only_for_its_solver(store, tmp_path):
    step = counting(SupervisedModule.training_step)
    with mock.patch.object(SupervisedModule, "training_step", step):
        run_train(cfg("train", store, tmp_path, "augment.preset=none", "supervised.mixup=aligned", *ONE_STEP))
    assert step.calls and all("augment/align.py" in c for c in step.calls), step.calls


def test_the_step_key_stays_on_the_host(tmp_path):
    """The data module moves a batch to the device but its (epoch, index) key, which seeds the
    step's CPU generator: reading it must not wait for the device."""
    from ssl_ws.data import load_store
    from ssl_ws.train.datamodule import INRDataModule

    st = load_store(tiny_store(tmp_path / "s"))
    dm = INRDataModule(st, st.rows("train"), batch_size=4)
    batch = {"params": torch.zeros(4, st.spec.n_params), "labels": torch.zeros(4, dtype=torch.long),
             "key": torch.tensor([0, 1])}
    moved = dm.transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert moved["params"].device.type == moved["labels"].device.type == "meta"
    assert moved["key"].device.type == "cpu"


def test_a_batch_gathered_from_resident_rows_has_no_host_sync(tmp_path):
    """With the training rows held on the device, the data module gathers each batch there: neither the
    rows' indices (moved to the device) nor the resident tensors may be read on the host."""
    from ssl_ws.data import load_store
    from ssl_ws.data.dataset import ResidentRows
    from ssl_ws.train.datamodule import INRDataModule

    st = load_store(tiny_store(tmp_path / "s"))
    dm = INRDataModule(st, st.rows("train"), batch_size=4)
    rows = torch.from_numpy(dm.train_rows[[3, 0, 5, 1]])
    batch = {"rows": rows, "rows2": rows.flip(0), "key": torch.tensor([0, 1])}
    dm.resident_rows = ResidentRows(st, dm.train_rows, "cpu")  # what it gathers
    moved = dm.transfer_batch_to_device(dict(batch), torch.device("cpu"), 0)
    assert torch.equal(moved["params"], torch.from_numpy(st.params[rows.numpy()]))
    assert torch.equal(moved["params2"], torch.from_numpy(st.params[rows.flip(0).numpy()]))
    assert torch.equal(moved["labels"], torch.from_numpy(st.labels[rows.numpy()]).long())
    # how: everything "on the device" (meta, tracked), the indices too
    held = dm.resident_rows
    for name in ("params", "labels", "slot"):
        setattr(held, name, getattr(held, name).to("meta").as_subclass(DeviceTracked))
    DeviceTracked.calls.clear()
    tracked = {k: v.as_subclass(DeviceTracked) if k != "key" else v for k, v in batch.items()}
    moved = dm.transfer_batch_to_device(tracked, torch.device("meta"), 0)
    assert moved["params"].shape == (4, st.spec.n_params) and moved["key"].device.type == "cpu"
    assert DeviceTracked.calls == [], DeviceTracked.calls


# ----------------------------------------------------- augmentation parameters drawn on the device
@pytest.fixture
def draws_on_the_device():
    """Every augmentation draw marked as a device tensor: what ``augment.draws=device`` gives on a GPU
    (a CUDA generator per step), so that reading a drawn parameter on the host is counted."""
    from ssl_ws.augment import primitives

    draw = primitives._draw
    # a drawn parameter is moved .to(ws.device), where it was drawn: a no-op on the GPU; here that device
    # is the CPU, so only an explicit move to "cpu" counts as one to the host
    with mock.patch.object(primitives, "_draw", lambda *a, **k: draw(*a, **k).as_subclass(DeviceTracked)), \
            mock.patch.object(primitives, "draws_on_host", lambda generator: False), \
            mock.patch.object(DeviceTracked, "literal_host_moves_only", True):
        yield


@pytest.mark.parametrize("kind, extra", [
    ("train", ("augment.preset=paper", "augment.mixup=none")),
    ("train", ("augment.preset=weak", "augment.mixup=plain")),
    ("train", ("augment.preset=strong", "augment.mixup=permute")),
    ("train", ("augment.preset=crop", "augment.mixup=none")),
    ("train", ("augment.preset=symmetry-shift", "augment.mixup=none")),
    ("train", ("augment.preset=noise", "augment.mixup=plain", "augment.mixup_partner=self")),
    ("pretrain", ("augment.preset=paper", "ssl.positives=same_fit")),
    ("pretrain", ("augment.preset=weak", "ssl.positives=two_views", "augment.mixup=plain", "augment.mixup_partner=view")),
])
def test_augmentation_parameters_drawn_on_the_device_are_never_read_on_the_host(
        store, tmp_path, draws_on_the_device, kind, extra):
    module = SupervisedModule if kind == "train" else SimCLRModule
    step = counting(module.training_step)
    with mock.patch.object(module, "training_step", step):
        (run_train if kind == "train" else run_pretrain)(cfg(kind, store, tmp_path, *extra, *ONE_STEP))
    ours = [c for c in step.calls if LIGHTLY_NTXENT not in c]
    assert step.calls is not None and ours == [], ours


def test_a_beta_mixup_reads_its_draw_on_the_host_once(store, tmp_path, draws_on_the_device):
    # scipy's inverse Beta CDF: the one host read of a drawn parameter (U(0, 1) lam has none)
    step = counting(SupervisedModule.training_step)
    with mock.patch.object(SupervisedModule, "training_step", step):
        run_train(cfg("train", store, tmp_path, "augment.preset=none", "augment.mixup=plain",
                      "augment.mixup_alpha=0.4", *ONE_STEP))
    assert len(step.calls) == 1 and "augment/mixup.py" in step.calls[0], step.calls
