"""Encoder export: round trip, CLI, and each bad input (missing/corrupt/foreign file, spec mismatch)."""

import os

import numpy as np
import pytest
import torch

from _train_helpers import SPEC, cfg, tiny_store
from conftest import random_ws
from ssl_ws import INRSpec, SslWsError
from ssl_ws.cli import main
from ssl_ws.config import load_config
from ssl_ws.data import load_store
from ssl_ws.models.export import load_encoder
from ssl_ws.train.runs import run_pretrain


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    store = tiny_store(base / "store")
    res = run_pretrain(cfg("pretrain", store, base / "runs", "encoder.name=mlp", "encoder.hidden=8", "augment.preset=weak"))
    return store, res


def test_export_round_trip_identical_embeddings(run, tmp_path, capsys):
    store, res = run
    ckpt = res["last_checkpoint"]
    out = tmp_path / "encoder.pt"
    assert main(["export", ckpt, "--out", str(out)]) == 0
    assert "identity" in capsys.readouterr().out
    # plain tensors/dicts only
    payload = torch.load(out, weights_only=True)
    assert payload["format"] == "ssl_ws.encoder" and payload["config"]["encoder"]["name"] == "mlp"
    a, b = load_encoder(ckpt), load_encoder(out)
    assert a.identity == b.identity and not a.training and not b.training
    st = load_store(store)
    ws = st.weights(st.rows("test"))
    with torch.no_grad():
        assert torch.equal(a(ws), b(ws))
    assert b(ws).shape == (len(ws), b.out_dim)
    # the normalizer travels with the encoder: embedding = encoder(normalize(raw))
    with torch.no_grad():
        assert torch.allclose(b(ws), b.encoder(b.normalizer(ws)))
    # a run directory exports its best checkpoint
    assert main(["export", res["run_dir"], "--out", str(tmp_path / "e2.pt")]) == 0


def test_bad_files(run, tmp_path):
    _, res = run
    with pytest.raises(SslWsError, match="no such checkpoint"):
        load_encoder(tmp_path / "missing.ckpt")
    data = open(res["last_checkpoint"], "rb").read()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SslWsError, match="corrupt"):
        load_encoder(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(SslWsError, match="neither"):
        load_encoder(foreign)
    assert main(["export", str(truncated), "--out", str(tmp_path / "x.pt")]) == 2
    assert not (tmp_path / "x.pt").exists()


def test_spec_mismatch(run, tmp_path):
    store, res = run
    model = load_encoder(res["last_checkpoint"])
    other = INRSpec((2, 4, 4, 1))
    with pytest.raises(SslWsError, match="trained on INRs"):
        model(random_ws(other, 2))
    # resuming a run on another store (of another architecture) is refused: a resume is the same run
    wrong = tiny_store(tmp_path / "wrong", spec=other)
    c = load_config("pretrain", os.path.join(res["run_dir"], "config.yaml"), [f"data.store={wrong}"])
    with pytest.raises(SslWsError, match="these keys change it: data.store="):
        run_pretrain(c, resume=res["last_checkpoint"])
    # corrupt checkpoint given to --resume
    bad = tmp_path / "bad" / "checkpoints"
    bad.mkdir(parents=True)
    (bad / "last.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(SslWsError, match="corrupt"):
        run_pretrain(load_config("pretrain", os.path.join(res["run_dir"], "config.yaml")), resume=str(tmp_path / "bad"))
    with pytest.raises(SslWsError, match="no checkpoints/last.ckpt"):
        run_pretrain(load_config("pretrain", os.path.join(res["run_dir"], "config.yaml")), resume=str(tmp_path))


def test_reinitialized_is_the_architecture_with_seeded_random_weights():
    from ssl_ws.models import build_encoder
    from ssl_ws.models.export import EmbeddingModel
    from ssl_ws.models.normalize import WeightNormalizer

    enc = build_encoder("dwsnet", SPEC, hidden=4, out_dim=8, num_heads=2)
    model = EmbeddingModel(enc, WeightNormalizer.identity(SPEC), SPEC, enc.config)
    state = torch.random.get_rng_state()
    a, b, c = model.reinitialized(3), model.reinitialized(3), model.reinitialized(4)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    assert a.encoder_config == model.encoder_config and a.normalizer is model.normalizer
    pa, pb, pc = (torch.cat([p.flatten() for p in m.encoder.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    torch.manual_seed(3)  # as a run seeded 3 builds its encoder
    fresh = build_encoder("dwsnet", SPEC, hidden=4, out_dim=8, num_heads=2)
    assert torch.equal(pa, torch.cat([p.flatten() for p in fresh.parameters()]))
