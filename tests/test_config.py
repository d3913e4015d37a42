"""Configs: schema, overrides, suggestions for typos, --help, shipped files."""

import glob
import os

import pytest

from ssl_ws import SslWsError
from ssl_ws.cli import main
from ssl_ws.config import describe_schema, load_config, schema_keys, PretrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_overrides_and_types(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("name: x\nencoder: {name: dwsnet, hidden: 16}\ntrainer: {max_epochs: 5}\n")
    c = load_config("pretrain", str(y), ["trainer.max_epochs=2", "encoder.hidden=8", "ssl.temperature=0.2", "data.store=s"])
    assert c.trainer.max_epochs == 2 and c.encoder.hidden == 8 and c.ssl.temperature == 0.2
    assert c.data.batch_size == 64 and c.trainer.accelerator == "auto"  # schema defaults


@pytest.mark.parametrize(
    "override, message",
    [
        ("ssl.temprature=0.2", "unknown config key 'ssl.temprature'; did you mean 'ssl.temperature'?"),
        ("trainer.max_epoch=2", "did you mean 'trainer.max_epochs'?"),
        ("trainer.max_epochs=two", "trainer.max_epochs"),
        ("ssl.positives=two_view", "did you mean 'two_views'?"),
        ("noequals", "key=value"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(SslWsError) as err:
        load_config("pretrain", None, [override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_store_is_required_and_steps_are_checked(tmp_path):
    with pytest.raises(SslWsError, match="config key 'data.store' is required"):
        load_config("train", None, ["trainer.max_steps=10"])
    with pytest.raises(SslWsError, match="trainer.max_steps must be at least 1"):
        load_config("train", None, ["data.store=s", "trainer.max_steps=0"])
    c = load_config("pretrain", None, ["data.store=s"])
    assert c.ssl.positives == "auto" and c.encoder.name == "dwsnet"


def test_unknown_key_in_yaml_and_wrong_kind(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("optim:\n  lrr: 0.1\n")
    with pytest.raises(SslWsError, match="did you mean 'optim.lr'"):
        load_config("pretrain", str(y))
    with pytest.raises(SslWsError, match="unknown config key 'ssl.temperature'"):
        load_config("train", None, ["ssl.temperature=0.1"])  # SimCLR keys are not supervised keys
    with pytest.raises(SslWsError, match="no such config file"):
        load_config("train", str(tmp_path / "nope.yaml"))


def test_help_lists_every_key(capsys):
    text = describe_schema("pretrain")
    for key in schema_keys(PretrainConfig):
        assert key in text
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    out = capsys.readouterr().out
    assert "ssl.temperature = 0.1" in out and "NT-Xent temperature" in out


def test_cli_reports_unknown_key(capsys):
    assert main(["pretrain", "ssl.temprature=0.3"]) == 2
    assert "did you mean 'ssl.temperature'?" in capsys.readouterr().err


def test_shipped_configs_load():
    files = glob.glob(os.path.join(ROOT, "configs", "pretrain", "*.yaml"))
    files += glob.glob(os.path.join(ROOT, "configs", "supervised", "*.yaml"))
    assert len(files) >= 4
    for f in files:
        kind = "pretrain" if "/pretrain/" in f else "train"
        c = load_config(kind, f, ["data.store=some/store"])  # the cpu recipes name no store
        assert c.trainer.accelerator == "auto"


def test_a_new_encoder_name_drops_the_other_encoders_options(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("data:\n  store: s\nencoder:\n  name: dwsnet\n  hidden: 16\n  norm: batch\n")
    cfg = load_config("train", str(y), ["encoder.name=nfn", "encoder.n_layers=2"])
    assert dict(cfg.encoder) == {"name": "nfn", "n_layers": 2}
    same = load_config("train", str(y), ["encoder.hidden=8"])  # same encoder: options merge
    assert dict(same.encoder) == {"name": "dwsnet", "hidden": 8, "norm": "batch"}


MIXUP_KEYS = ("mixup", "mixup_partner", "mixup_alpha")


@pytest.mark.parametrize(
    "kind, overrides, expect",
    [
        ("train", ["supervised.mixup=aligned", "supervised.mixup_alpha=0.4"], ("paper", "aligned", "batch", 0.4)),
        ("train", ["augment.preset=symmetry+permmix"], ("symmetry", "permute", "batch", None)),
        # the old supervised.mixup overrode the preset's; 'none' meant "the preset's"
        ("train", ["augment.preset=paper+selfmix", "supervised.mixup=plain"], ("paper", "plain", "batch", None)),
        ("train", ["augment.preset=paper+selfmix", "supervised.mixup=none"], ("paper", "aligned", "self", None)),
        ("pretrain", ["ssl.view_mixup=true", "ssl.positives=two_views"], ("paper", "aligned", "view", 1.0)),
        ("pretrain", ["ssl.view_mixup=false", "ssl.view_mixup_alpha=0.3"], ("paper", "none", "batch", None)),
        ("pretrain", ["augment.preset=weak+mixup", "augment.preset2=strong+mixup"], ("weak", "aligned", "batch", None)),
        ("pretrain", ["augment.mixup=plain", "augment.mixup_partner=self"], ("paper", "plain", "self", None)),
    ],
)
def test_old_mixup_spellings_become_augment_mixup(kind, overrides, expect):
    c = load_config(kind, None, ["data.store=s", *overrides])
    assert (c.augment.preset, *(c.augment[k] for k in MIXUP_KEYS)) == expect
    assert "mixup" not in c.get("supervised", {}) and "view_mixup" not in c.get("ssl", {})


@pytest.mark.parametrize(
    "kind, overrides, message",
    [
        ("train", ["augment.mixup=aligned", "supervised.mixup=plain"], "sets MixUp twice"),
        ("train", ["augment.mixup=aligned", "augment.preset=paper+mixup"], "sets MixUp twice"),
        ("pretrain", ["augment.preset=paper+selfmix", "ssl.view_mixup=true"], "one MixUp"),
        ("pretrain", ["augment.preset=paper+selfmix", "augment.preset2=paper"], "different MixUps"),
        ("pretrain", ["ssl.view_mixup=true", "ssl.positives=same_fit"], "needs ssl.positives=two_views"),
        ("train", ["augment.mixup=aligned", "augment.mixup_partner=view"], "mixes two fits of one object"),
        ("train", ["augment.mixup=aligend"], "did you mean 'aligned'?"),
        ("train", ["augment.mixup_alpha=0"], "augment.mixup_alpha"),
        ("pretrain", ["supervised.mixup=plain"], "unknown config key 'supervised.mixup'"),
        ("train", ["augment.preset=paper+mixmix"], "after '+' use one of"),
    ],
)
def test_contradicting_mixups_are_refused(kind, overrides, message):
    with pytest.raises(SslWsError) as err:
        load_config(kind, None, ["data.store=s", *overrides])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_later_layers_override_earlier_mixups(tmp_path):
    new, old = tmp_path / "new.yaml", tmp_path / "old.yaml"
    new.write_text("encoder: {name: dwsnet}\naugment: {preset: paper, mixup: aligned}\n")
    old.write_text("encoder: {name: dwsnet}\naugment: {preset: paper}\nsupervised: {mixup: aligned, mixup_alpha: 0.2}\n")
    # an old override on a new file, and the other way round
    assert load_config("train", str(new), ["data.store=s", "supervised.mixup=none"]).augment.mixup == "none"
    c = load_config("train", str(old), ["data.store=s", "augment.mixup=plain"])
    assert (c.augment.mixup, c.augment.mixup_partner, c.augment.mixup_alpha) == ("plain", "batch", 0.2)
    assert load_config("train", str(new), ["data.store=s", "augment.preset=symmetry+selfmix"]).augment.mixup_partner == "self"
