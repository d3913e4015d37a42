"""The paper-table runner's protocol (benchmarks/paper/run_tables.py, issue 13).

What makes the tables a fair test of the paper's claims is checked on the commands the runner
would run (nothing is trained): every supervised row of a scale gets the same optimizer steps
(never epochs), so do SimCLR pre-training and fine-tuning; Table 2 separates positives made by
augmenting one fit from positives that are two fits of the object; Table 3 covers every encoder of
the registry; the learning curve's subsets are nested fractions of the training objects.
"""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "paper"))
import run_tables as rt  # noqa: E402


def rows(t, scale="small", seed=0):
    rt.STORE_OVERRIDE = "/some/store"
    return rt.TABLES[t](rt.context(t, scale, seed))


def kind(step):
    """train / pretrain / linear-probe / knn / finetune: the ssl-ws command of a step."""
    return step["cmd"][1]


def value(cmd, key):
    found = [a.split("=", 1)[1] for a in cmd if a.startswith(key + "=")]
    return found[-1] if found else None


@pytest.mark.parametrize("scale", ["mini", "small"])
def test_every_row_of_a_scale_trains_the_same_number_of_steps(scale):
    by_kind = {}
    for t in (1, 2, 3, 4):
        for name, steps in rows(t, scale).items():
            for s in steps:
                if kind(s) in ("train", "pretrain", "finetune"):
                    by_kind.setdefault(kind(s), set()).add(value(s["cmd"], "trainer.max_steps"))
    assert by_kind["train"] and by_kind["pretrain"] and by_kind["finetune"], by_kind
    for k, vals in by_kind.items():
        assert len(vals) == 1 and None not in vals, (scale, k, vals)  # one budget, in steps
        for t in (1, 2, 3, 4):
            for steps in rows(t, scale).values():
                for s in steps:
                    if kind(s) == k:
                        assert not any(a.startswith("trainer.max_epochs=") for a in s["cmd"]), s["cmd"]


def test_table2_separates_one_fit_augmentation_from_two_fit_positives():
    t2 = rows(2)
    pos = {k: (value(v[0]["cmd"], "ssl.positives"), value(v[0]["cmd"], "augment.preset")) for k, v in t2.items()}
    one_fit = {aug for p, aug in pos.values() if p == "same_fit"}
    two_fit = {aug for p, aug in pos.values() if p == "two_views"}
    assert {"weak", "symmetry", "warp", "paper", "paper+selfmix"} <= one_fit, pos
    assert {"none", "paper"} <= two_fit, pos
    assert ("same_fit", "none") not in pos.values()  # identical views: nothing to learn
    # one-fit and two-fit positives pre-train on the same INRs; only the 1v row sees one fit per object
    views = {k: value(v[0]["cmd"], "data.max_views") for k, v in t2.items()}
    assert {k for k, mv in views.items() if mv is not None} == {"ssl-1v-paper"} and views["ssl-1v-paper"] == "1"
    for steps in t2.values():  # each row: pre-training, then probe / kNN / fine-tune with 10 and all labels
        kinds = [kind(s) for s in steps]
        assert kinds[0] == "pretrain" and {"linear-probe", "knn", "finetune"} <= set(kinds), kinds
        lpc = {s["cmd"][s["cmd"].index("--labels-per-class") + 1] for s in steps if "--labels-per-class" in s["cmd"]}
        assert lpc == {"10", "all"}, lpc


def test_table3_covers_every_registry_encoder_supervised_and_ssl():
    from ssl_ws.models.registry import list_encoders

    t3 = rows(3)
    own = {value(v[0]["cmd"], "encoder.name") for v in t3.values() if "shared" not in v[0]}
    assert own | {"dwsnet"} == set(list_encoders()), own  # DWSNet: its shared rows, and dwsnet-probes
    assert {k.rsplit("-", 1)[1] for k in t3} == {"supervised", "ssl"}
    assert sum(k.endswith("-supervised") for k in t3) == sum(k.endswith("-ssl") for k in t3)
    # every encoder trains the best recipes of Tables 1 and 2
    for k, steps in t3.items():
        want = ["data.max_views=1"] + rt.BEST_SUP if k.endswith("-supervised") else rt.BEST_SSL
        assert all(o in steps[0]["cmd"] for o in want), (k, steps[0]["cmd"])


def test_table3_dwsnet_rows_are_the_best_rows_of_tables_1_and_2():
    """The configs' encoder is DWSNet, so Table 3's DWSNet rows run exactly Table 1's / Table 2's best
    rows: they are shared (same runs, trained once), which is only right while the configs' encoder is
    ENCODERS["dwsnet"] and the shared rows train BEST_SUP / BEST_SSL."""
    from ssl_ws.config import load_config

    for kind_, cfg in (("train", rt.SUP_CFG), ("pretrain", rt.PRE_CFG)):
        plain = load_config(kind_, os.path.join(ROOT, cfg)).encoder
        assert plain == load_config(kind_, os.path.join(ROOT, cfg), rt.ENCODERS["dwsnet"]).encoder, cfg
    t1, t2, t3 = rows(1), rows(2), rows(3)
    assert t3["dwsnet-supervised"][0]["cmd"] == t1[rt.BEST_SUP_ROW][0]["cmd"]
    assert t3["dwsnet-ssl"][0]["cmd"] == t2[rt.BEST_SSL_ROW][0]["cmd"]
    assert all(o in t1[rt.BEST_SUP_ROW][0]["cmd"] for o in ["data.max_views=1"] + rt.BEST_SUP)
    assert all(o in t2[rt.BEST_SSL_ROW][0]["cmd"] for o in rt.BEST_SSL)
    assert t3["dwsnet-supervised"][0]["shared"] == (1, rt.BEST_SUP_ROW)


def test_a_shared_row_is_recorded_and_read_as_its_source_row(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rt, "ROOT", str(tmp_path))
    steps = rows(3)["dwsnet-supervised"]
    run = tmp_path / steps[0]["out"] / "20260101-000000"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(dict(test_acc=0.58, train_acc=0.71, history=[])))
    rt.record("small", 3, "dwsnet-supervised", 0, steps)
    data = json.load(open(tmp_path / "benchmarks" / "paper" / "results" / "small.json"))
    assert list(data) == [f"t1/{rt.BEST_SUP_ROW}/seed0"] and data[f"t1/{rt.BEST_SUP_ROW}/seed0"]["sup_steps"] == 8000
    (run / "results.json").unlink()  # runs/ absent (a fresh checkout): read from the source row's record
    assert rt.row_metrics(3, "small", "dwsnet-supervised", 0, steps)["test_acc"] == 0.58


def test_learning_curve_uses_nested_fractions_of_the_training_objects():
    t4 = rows(4)
    own = {k: v for k, v in t4.items() if "shared" not in v[0]}
    per_class = sorted({int(value(v[0]["cmd"], "data.objects_per_class")) for v in own.values()})
    assert per_class == sorted(rt.CURVE_PER_CLASS) and all(0 < pc < 200 for pc in per_class)
    assert {k.split("@")[0] for k in t4} == {"1v-none", "1v-best", "10v-none"}
    # 100% of the objects: Table 1's rows, every training object
    full = {k: v[0]["shared"] for k, v in t4.items() if "shared" in v[0]}
    assert full == {"1v-none@all": (1, "1v-none"), "1v-best@all": (1, rt.BEST_SUP_ROW), "10v-none@all": (1, "10v-none")}
    assert all(value(v[0]["cmd"], "data.objects_per_class") is None for k, v in t4.items() if k in full)


def test_simclr_rows_report_whether_their_loss_flattened(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pre = rows(2)["ssl-1fit-paper"][0]
    run = tmp_path / pre["out"] / "20260101-000000"
    run.mkdir(parents=True)
    hist = [dict(step=s, loss=l, knn_acc=a) for s, l, a in ((300, 5.0, 0.3), (1500, 3.0, 0.5), (3000, 2.9, 0.55))]
    (run / "results.json").write_text(__import__("json").dumps(dict(history=hist, best=hist[-1])))
    m = rt.metrics([pre])
    assert (m["loss_half"], m["loss_end"], m["online_knn"]) == (3.0, 2.9, 0.55)
    assert {"loss_half", "loss_end", "online_knn"} <= set(rt.COLUMNS[2])
    # the fine-tune's clean train accuracy is read from its run: did the fine-tune fit its labels?
    (ft,) = [s for s in rows(2)["ssl-1fit-paper"] if s.get("key") == "finetune_all"]
    ft_run = tmp_path / "ft-run"
    ft_run.mkdir()
    (ft_run / "results.json").write_text(__import__("json").dumps(dict(train_acc=0.97, test_acc=0.43)))
    os.makedirs(os.path.dirname(ft["out"]), exist_ok=True)
    payload = dict(results=dict(test_acc=0.43, run_dir=str(ft_run)))
    open(ft["out"], "w").write(__import__("json").dumps(payload))
    m = rt.metrics([ft])
    assert (m["finetune_all"], m["finetune_all_train"]) == (0.43, 0.97) and "finetune_all_train" in rt.COLUMNS[2]


@pytest.mark.parametrize("seed", [0, 1])
def test_few_label_baselines_train_on_the_objects_table2_probes_draw(seed):
    """Table 2's 10-labels-per-class columns have baselines trained on the same labelled objects:
    ``ssl-ws baselines --labels-per-class 10 --seed S`` draws what ``linear-probe`` / ``knn`` /
    ``finetune --labels-per-class 10 --seed S`` draw (one fit per object, as the probes embed)."""
    def opt(cmd, flag):
        return cmd[cmd.index(flag) + 1]

    rt.STORE_OVERRIDE = "/some/store"
    few = [s for s in rt.baselines_steps("small", [0, 1]) if "lpc" in s["key"]]
    assert len(few) == 2 and len({s["out"] for s in few}) == 2  # one record per seed
    (base,) = [s["cmd"] for s in few if opt(s["cmd"], "--seed") == str(seed)]
    for name, steps in rows(2, seed=seed).items():
        for s in steps:
            if kind(s) in ("linear-probe", "knn", "finetune") and opt(s["cmd"], "--labels-per-class") != "all":
                assert opt(s["cmd"], "--labels-per-class") == opt(base, "--labels-per-class") == rt.FEW_LABELS
                assert opt(s["cmd"], "--seed") == opt(base, "--seed") == str(seed), name
                assert s["cmd"][3] == base[2]  # the same store
                # one fit per labelled object, as the baseline trains on
                assert (opt(s["cmd"], "--max-views") if kind(s) != "finetune" else value(s["cmd"], "data.max_views")) == "1"
    assert opt(base, "--train-views") == "1"


def test_every_training_run_evaluates_ten_times_not_every_epoch():
    """Training, pre-training and fine-tuning evaluate every tenth of their steps: a 10-labels-per-class
    fine-tune has one batch per epoch, and evaluating each epoch would run 1,000 evaluations."""
    for t in (1, 2, 3, 4):
        for name, steps in rows(t).items():
            for s in steps:
                if kind(s) in ("train", "pretrain", "finetune"):
                    n = int(value(s["cmd"], "trainer.max_steps"))
                    assert value(s["cmd"], "eval.every_n_steps") == str(max(n // 10, 1)), (name, kind(s))


def test_a_stopped_row_continues_from_its_last_checkpoint(tmp_path, monkeypatch):
    """A runner killed mid-row (a session's end) left the training run's last.ckpt and no results:
    running the row again resumes that run instead of training from step 0."""
    monkeypatch.chdir(tmp_path)
    steps = rows(2)["ssl-1fit-paper"]
    ran = []
    monkeypatch.setattr(rt.subprocess, "call", lambda cmd, **kw: ran.append(cmd) or 1)  # 1: stop the row
    rt.run_row(steps, dry=False, log=str(tmp_path / "log.txt"))
    assert ran[-1] == rt.process_cmd(rt.render(steps[0], steps))  # nothing to resume: the full command
    run = tmp_path / steps[0]["out"] / "20260101-000000"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    rt.run_row(steps, dry=False, log=str(tmp_path / "log.txt"))
    assert ran[-1] == rt.process_cmd(["ssl-ws", "pretrain", "--resume", str(run.relative_to(tmp_path))])
    (run / "results.json").write_text("{}")  # finished: the pre-training step is skipped
    rt.run_row(steps, dry=False, log=str(tmp_path / "log.txt"))
    assert ran[-1][3] == "linear-probe"


def test_tables_and_curves_print_from_the_recorded_json_without_the_runs(tmp_path, monkeypatch, capsys):
    """runs/ is not tracked: on a fresh checkout --print-only (and --curves) read what each finished
    row recorded in benchmarks/paper/results/<scale>.json."""
    import json

    monkeypatch.chdir(tmp_path)  # no runs/ here
    monkeypatch.setattr(rt, "ROOT", str(tmp_path))
    (tmp_path / "benchmarks" / "paper" / "results").mkdir(parents=True)
    curve = [[800, 0.41, 0.93], [1600, 0.43, 1.0]]
    entry = dict(test_acc=0.43, train_acc=1.0, gap=0.57, curve=curve, sup_steps=8000, commands=["ssl-ws train"])
    (tmp_path / "benchmarks" / "paper" / "results" / "small.json").write_text(json.dumps({"t1/1v-none/seed0": entry}))
    rows(1)  # sets the store override
    monkeypatch.setattr(rt, "print_baselines", lambda *a: None)
    rt.print_curves(rt.print_table(1, "small", [0], ["1v-none", "1v-warp"], dry=False))
    out = capsys.readouterr().out
    assert "| 1v-none | 1 | 1.000 | 0.430 | 0.570 |" in out
    assert "| 1v-warp | 0 | — |" in out  # not recorded: no numbers invented
    assert "| 1v-none (test / clean train accuracy), seed | 800 | 1,600 |" in out
    assert "| 0 | .410/.93 | .430/1.0 |" in out and "1v-warp (" not in out


def test_learning_curve_baselines_train_on_the_objects_of_each_point():
    """Each subset of Table 4 has its baselines: ``ssl-ws baselines --labels-per-class N --seed 0`` draws
    the objects ``data.objects_per_class=N`` trains on (``training_rows`` draws that subset with seed 0,
    whatever the training seed), with one fit and with all fits per object."""
    def opt(cmd, flag):
        return cmd[cmd.index(flag) + 1]

    t4 = rows(4, seed=1)
    steps = rt.curve_baselines_steps("small")
    per_class = sorted({int(value(v[0]["cmd"], "data.objects_per_class")) for k, v in t4.items() if "shared" not in v[0]})
    got = sorted((int(opt(s["cmd"], "--labels-per-class")), opt(s["cmd"], "--train-views")) for s in steps)
    assert got == sorted((pc, v) for pc in per_class for v in rt.BASELINE_VIEWS)
    assert all(opt(s["cmd"], "--seed") == "0" and s["cmd"][2] == value(t4["1v-none@50-per-class"][0]["cmd"], "data.store")
               for s in steps)
    assert len({s["out"] for s in steps}) == len(steps)  # one record per point


def test_learning_curve_prints_each_recipe_across_the_subsets(tmp_path, monkeypatch, capsys):
    """Table 4 is printed as a curve: a recipe per line, a subset per column, the same objects' baselines
    below; a point that has not run prints a dash, not a number."""
    import json

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rt, "ROOT", str(tmp_path))
    res = tmp_path / "benchmarks" / "paper" / "results"
    res.mkdir(parents=True)
    entry = lambda test, train: dict(test_acc=test, train_acc=train, gap=train - test, sup_steps=8000, commands=[])
    (res / "small.json").write_text(json.dumps({"t4/1v-none@50-per-class/seed0": entry(0.30, 1.0),
                                                "t1/1v-none/seed0": entry(0.43, 1.0)}))
    methods = {m: dict(train_acc=1.0, test_acc=0.7) for m in rt.BASELINE_NAMES}
    (res / "small-baselines-1view-50-per-class.json").write_text(json.dumps(dict(results=dict(methods=methods))))
    rows(4)
    rt.print_table(4, "small", [0], None, dry=False)
    out = capsys.readouterr().out
    assert "| 1v-none (1v-none) | 0.300 (1.000) | — | 0.430 (1.000) |" in out
    assert "| rendered-pixel LR, 1 fit per object | 0.700 (1.000) | — | — |" in out
    assert "| 10v-none (10v-none) | — | — | — |" in out


def test_a_recorded_row_is_not_trained_again_on_a_fresh_checkout(tmp_path, monkeypatch, capsys):
    """runs/ is not tracked: on a fresh machine a row that results/<scale>.json records as finished
    with the same commands is skipped (hours of training), unless --rerun; a row recorded with other
    commands (another store here) is run."""
    import json
    import shlex

    monkeypatch.setattr(rt, "ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rt, "print_baselines", lambda *a: None)
    ran = []
    monkeypatch.setattr(rt.subprocess, "call", lambda cmd, **kw: ran.append(cmd) or 1)
    store = tmp_path / "store"
    store.mkdir()
    (store / "meta.json").write_text("{}")
    rt.STORE_OVERRIDE = str(store)
    steps = rt.TABLES[1](rt.context(1, "small", 0))["1v-warp"]
    res = tmp_path / "benchmarks" / "paper" / "results"
    res.mkdir(parents=True)
    entry = dict(test_acc=0.40, train_acc=1.0, sup_steps=8000, commands=[shlex.join(steps[0]["cmd"])])
    (res / "small.json").write_text(json.dumps({"t1/1v-warp/seed0": entry}))
    argv = ["--table", "1", "--rows", "1v-warp", "--seeds", "0", "--skip-baselines", "--store", str(store)]
    assert rt.main(argv) == 0 and ran == []
    assert "t1/1v-warp/seed0: finished, as results/small.json records (skipped; --rerun trains it again)" \
        in capsys.readouterr().out
    assert rt.main(argv + ["--rerun"]) == 0 and ran[-1] == rt.process_cmd(steps[0]["cmd"])
    entry["commands"] = [shlex.join(steps[0]["cmd"]).replace(str(store), "/another/store")]
    (res / "small.json").write_text(json.dumps({"t1/1v-warp/seed0": entry}))
    ran.clear()
    assert rt.main(argv) == 0 and ran == [rt.process_cmd(steps[0]["cmd"])]
    del entry["test_acc"]  # recorded in part (its step failed): run
    entry["commands"] = [shlex.join(steps[0]["cmd"])]
    (res / "small.json").write_text(json.dumps({"t1/1v-warp/seed0": entry}))
    ran.clear()
    assert rt.main(argv) == 0 and ran == [rt.process_cmd(steps[0]["cmd"])]


def test_a_missing_store_stops_the_runner_with_the_command_that_builds_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(rt, "ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rt, "print_baselines", lambda *a: None)
    ran = []
    monkeypatch.setattr(rt.subprocess, "call", lambda cmd, **kw: ran.append(cmd) or 0)
    missing = str(tmp_path / "not-built")
    assert rt.main(["--table", "1", "--rows", "1v-warp", "--store", missing, "--skip-baselines"]) == 2
    assert ran == []
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"run_tables: no INR store at {missing} (no meta.json: not built, or its build was stopped); build it "
                   f"first with `benchmarks/paper/build_data.sh --scale small --recipe {rt.RECIPE} --out {missing}` "
                   "(a stopped build resumes), then run this again"]
    assert rt.main(["--table", "1", "--rows", "1v-warp", "--store", missing, "--dry-run"]) == 0  # lists, needs none


def test_a_step_runs_this_checkouts_code_without_ssl_ws_on_path(tmp_path):
    """A worktree's rows failed at once (exit 1, 0 s) when the ``ssl-ws`` on PATH had been installed
    from another checkout that had moved: a step now runs ``python -m ssl_ws.cli`` from the
    repository root, which needs no console script at all."""
    import subprocess
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["PATH"] = str(tmp_path)  # no ssl-ws here
    out = subprocess.run(rt.process_cmd(["ssl-ws", "--help"]), cwd=rt.ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "pretrain" in out.stdout


def test_a_failed_step_prints_its_error_in_one_line(tmp_path, monkeypatch, capsys):
    """A failing step names its error, not only the path of its log."""
    monkeypatch.chdir(tmp_path)
    steps = rows(2)["ssl-1fit-paper"]

    def fail(cmd, stdout, **kw):
        stdout.write("Traceback (most recent call last):\nModuleNotFoundError: No module named 'x'\n")
        return 1

    monkeypatch.setattr(rt.subprocess, "call", fail)
    rt.run_row(steps, dry=False, log=str(tmp_path / "log.txt"))
    out = capsys.readouterr().out
    assert "step failed: ModuleNotFoundError: No module named 'x'; the row's later steps are skipped" in out
