"""``fewshot evaluate`` end to end on a small synthetic speaker-per-folder dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synth import SR, synth_voice


def evaluate(dataset, out, options: str, *values, model=None) -> int:
    """``fewshot evaluate DATASET --out OUT [--model MODEL] OPTIONS VALUES...`` in this process: ``options`` is
    split at spaces, each of ``values`` (a path) is one argument."""
    from fewshot.cli import main

    model_option = ["--model", str(model)] if model is not None else []
    return main(["evaluate", str(dataset), "--out", str(out), *model_option, *options.split(), *map(str, values)])


# name: (f0 in Hz, formants as (centre Hz, bandwidth Hz))
VOICES = {
    "spk-ann": (220.0, [(850, 90), (1650, 120), (2900, 180)]),
    "spk-bob": (105.0, [(500, 70), (1100, 100), (2400, 160)]),
    "spk-cat": (165.0, [(350, 60), (2300, 140), (3100, 200)]),
    "spk-dan": (130.0, [(650, 80), (1300, 110), (2600, 170)]),
    "spk-eve": (250.0, [(450, 70), (1900, 130), (3300, 210)]),
}


def synth_speech(f0, formants, *, seconds, seed):
    return synth_voice(f0=f0, formants=formants, seconds=seconds, seed=seed)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Five speakers with ~52 s of speech each in three files, one with too little speech,
    and a SPEAKERS.tsv one level up."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("data")
    dev = root / "dev"
    for i, (name, (f0, formants)) in enumerate(VOICES.items()):
        (dev / name).mkdir(parents=True)
        for j in range(3):
            sf.write(str(dev / name / f"{j:03d}.wav"), synth_speech(f0, formants, seconds=20, seed=10 * i + j), SR)
    (dev / "spk-short").mkdir()
    sf.write(str(dev / "spk-short" / "000.wav"), synth_speech(180.0, VOICES["spk-ann"][1], seconds=12, seed=99), SR)
    rows = [f"{n}\tdev\tsynthetic\tf\t30\t60" for n in VOICES] + ["spk-short\tdev\tsynthetic\tm\t30\t12"]
    (root / "SPEAKERS.tsv").write_text("speaker\tsubset\tsource\tgender\tage\tseconds\n" + "\n".join(rows) + "\n")
    return dev


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from fewshot.config import ExtractorConfig, FeatureConfig
    from fewshot.model.extractor import Extractor
    from fewshot.model.nn import build_cnn

    root = tmp_path_factory.mktemp("models")
    fc = FeatureConfig()
    ec = ExtractorConfig(channels=(4, 8), blocks=(1, 1), embedding_dim=16)
    Extractor(build_cnn(ec, n_mels=64), feature_config=fc, extractor_config=ec).save(root / "tiny")
    oc = ExtractorConfig(arch="original", crop_frames=fc.segment_frames)
    Extractor(build_cnn(oc, n_mels=64), feature_config=fc, extractor_config=oc).save(root / "original")
    return root


@pytest.mark.slow
def test_evaluate_writes_report(dataset, models, tmp_path, capsys):

    out = tmp_path / "report"
    rc = evaluate(
        dataset,
        out,
        "--draws 3 --group-sizes 3 all --enroll-seconds 15 35 --baselines --original-model",
        str(models / "original"),
        model=models / "tiny",
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "shipped operating point: unknown cosine below" in printed
    assert "group | members' pieces rejected (%) | outsiders' pieces accepted (%)" in printed
    for name in (
        "metrics.json",
        "report.html",
        "report.md",
        "accuracy_vs_group_size.png",
        "accuracy_vs_enroll_seconds.png",
        "score_distributions.png",
        "det_curve.png",
        "confusion_k3_15s.png",
        "confusion_all_15s.png",
        "confusion_all_35s.png",
        "confusion_all_15s_mfcc.png",
        "confusion_all_15s_original.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    m = json.loads((out / "metrics.json").read_text())
    assert {"protocol", "dataset", "model_id", "systems", "operating_point", "headline", "command"} <= set(m)
    assert m["dataset"]["speakers_found"] == 6 and m["dataset"]["speakers_evaluated"] == 5
    assert m["dataset"]["left_out"] == ["spk-short"]
    assert m["protocol"]["draws"] == 3 and m["protocol"]["enroll_seconds"] == [15.0, 35.0]
    assert set(m["systems"]) == {"default", "mfcc", "original"}
    for key, s in m["systems"].items():
        assert set(s["closed_set"]) == {"15", "35"}, key
        assert set(s["closed_set"]["15"]) == {"3", "all", "5_same_gender"}, key
        cell = s["closed_set"]["15"]["3"]
        assert cell["n_groups"] == 3 and 0 <= cell["accuracy_mean"] <= 1 and 0 <= cell["macro_f1_mean"] <= 1
        assert np.asarray(cell["representative"]["confusion"]).shape == (3, 3)
        assert cell["open_set_at_eer"]["false_accept_rate"] is not None
        assert ("open_set" in cell) == (key == "default")
        assert np.asarray(s["closed_set"]["35"]["all"]["representative"]["confusion"]).shape == (5, 5)
        assert set(s["enrollment_curve"]["3"]) == {"5", "10", "15", "20", "25", "30", "35"}
        assert 0 <= s["verification"]["eer"] <= 1
    assert m["systems"]["mfcc"]["model_id"].startswith("mfcc20-stats-")
    # the default system is measured at the operating point fewshot identify runs: its model's stored threshold
    from fewshot.config import ClassifierConfig
    from fewshot.model.extractor import load_extractor

    shipped = ClassifierConfig.of_model(load_extractor(models / "tiny"))
    op = m["operating_point"]
    assert op["unknown_threshold"] == shipped.unknown_threshold
    assert op["eer_threshold_here"] == m["systems"]["default"]["verification"]["eer_threshold"]
    cell = m["systems"]["default"]["closed_set"]["15"]["3"]
    assert cell["open_set"]["threshold"] == shipped.unknown_threshold
    by_size = m["systems"]["default"]["open_set_by_size"]
    assert set(by_size) == {"1", "3"}  # sizes 5 and 10 need more than the 5 speakers here
    assert all(
        c["threshold"] == shipped.unknown_threshold and 0 <= c["false_accept_rate"] <= 1 and c["det"]["far"]
        for c in by_size.values()
    )
    assert (out / "det_by_group_size.png").stat().st_size > 0
    assert cell["open_set_at_eer"]["threshold"] == op["eer_threshold_here"]
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "src='accuracy" not in page
    assert "| system |" in (out / "report.md").read_text()


def test_missing_original_model_is_said(dataset, models, tmp_path, capsys):

    out = tmp_path / "r"
    rc = evaluate(
        dataset,
        out,
        "--draws 2 --group-sizes 3 --enroll-seconds 15 --curve-seconds 15 --baselines --original-model",
        str(tmp_path / "nowhere"),
        model=models / "tiny",
    )
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert "no original-approach model" in m["systems"]["original"]["skipped"]
    assert "closed_set" in m["systems"]["mfcc"]
    md = (out / "report.md").read_text()
    assert "Not evaluated" in md
    # the skipped system's headline row has as many cells as the header
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert len({ln.count("|") for ln in rows[:4]}) == 1, rows[:4]
    printed = capsys.readouterr().out
    assert "shipped operating point" in printed
    # the terminal says how to get the original CNN too, not only "skipped"
    assert (
        f"no original-approach model at {tmp_path / 'nowhere'}. Train one with `python scripts/train_extractor.py"
        in printed
    )


def test_bad_group_size_is_refused(dataset, tmp_path, capsys):
    from fewshot.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", str(dataset), "--out", str(tmp_path), "--group-sizes", "1"])
    assert "group size" in capsys.readouterr().err


def test_compact_embeddings_change_nothing_the_svm_sees(rng):
    from fewshot.eval.benchmark import episode
    from fewshot.eval.protocol import EmbeddedSpeakers, compact

    centres = rng.normal(size=(4, 3000))
    enroll = [np.abs(c + rng.normal(size=(6, 3000))) for c in centres]  # wide, non-negative (ReLU-like)
    tests = [np.abs(c + rng.normal(size=(3, 3000))) for c in centres]
    emb = EmbeddedSpeakers(list("abcd"), {15.0: enroll}, tests, [None] * 4)
    small = compact(emb, T=15.0)
    assert small.enroll[15.0][0].shape[1] <= 4 * 6 + 4 * 3
    A, B = np.concatenate(enroll + tests), np.concatenate(small.enroll[15.0] + small.tests)
    np.testing.assert_allclose(B @ B.T, A @ A.T, rtol=1e-8, atol=1e-6)
    for g in ([0, 1, 2], [0, 1, 2, 3]):
        a, b = episode(emb, g, T=15.0), episode(small, g, T=15.0)
        for key in a:
            np.testing.assert_allclose(a[key], b[key], atol=1e-9)


def test_conditions_degrade_test_pieces_deterministically(rng):
    from fewshot.eval.conditions import CONDITIONS, Degrader, parse_conditions

    y = synth_voice(f0=120.0, formants=[(600, 80), (1400, 110), (2600, 170)], seconds=5.0, seed=3)
    pool = [
        synth_voice(f0=f, formants=[(500, 70), (1500, 100), (2500, 150)], seconds=6.0, seed=k)
        for k, f in enumerate((180.0, 210.0, 95.0, 150.0, 240.0))
    ]
    hum = np.sin(2 * np.pi * 300 * np.arange(48000) / 16000).astype(np.float32)
    d = Degrader(pool, ["a", "b", "c", "d", "me"], seed=0, recordings=[hum])
    for name in CONDITIONS:
        out = d.apply(name, y, speaker="me", index=1)
        assert out.shape == y.shape and np.all(np.isfinite(out)), name
        np.testing.assert_array_equal(out, d.apply(name, y, speaker="me", index=1))
        assert (name == "clean") == np.array_equal(out, y), name
    noise = d.apply("ssn10", y, speaker="me", index=0) - y
    snr = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert abs(snr - 10.0) < 0.1
    noise = d.apply("rec5", y, speaker="me", index=0) - y
    spec = np.abs(np.fft.rfft(noise)) ** 2
    assert spec[np.abs(np.fft.rfftfreq(len(noise), 1 / 16000) - 300) < 5].sum() > 0.9 * spec.sum()  # the recording
    with pytest.raises(ValueError, match="recorded noise"):
        Degrader(pool, ["a", "b", "c", "d", "me"]).apply("rec10", y, speaker="me", index=0)
    assert parse_conditions("room0.6,phone") == ["clean", "room0.6", "phone"]
    with pytest.raises(ValueError, match="unknown condition"):
        parse_conditions("clean,underwater")


def test_evaluate_with_conditions(dataset, models, tmp_path, capsys):

    out = tmp_path / "r"
    rc = evaluate(
        dataset,
        out,
        "--draws 2 --group-sizes 3 all --enroll-seconds 15 --curve-seconds 15 --conditions ssn10,room0.3,babble10",
        model=models / "tiny",
    )
    assert rc == 0
    conds = json.loads((out / "metrics.json").read_text())["systems"]["default"]["conditions"]
    assert list(conds) == ["clean", "ssn10", "room0.3", "babble10"]
    assert all(0 <= c["acc_3"] <= 1 and 0 <= c["eer"] <= 1 for c in conds.values())
    assert (out / "accuracy_vs_snr.png").is_file() and (out / "accuracy_vs_rt60.png").is_file()
    assert "room0.3" in (out / "report.md").read_text() and "ssn10" in capsys.readouterr().out
    # the shipped unknown and verify decisions in every condition and corpus (5 spk-* speakers: "all" only)
    m = json.loads((out / "metrics.json").read_text())
    default = m["systems"]["default"]
    table = {}
    for name, c in conds.items():
        cell = c["open_set"]["all"]
        assert (
            cell["speakers"] == 5 and set(cell["by_size"]) == {"1", "3"} and set(cell["left_out"]) == {"5", "10", "20"}
        )
        assert all(c["open_set"][k]["speakers"] == 0 for k in ("so", "ls"))
        for K, r in cell["by_size"].items():
            assert 0 <= r["false_accept_rate"] <= 1 and 0 <= r["false_reject_rate"] <= 1 and r["n_groups"] == 2
            table[name, K] = r["false_accept_rate"]
        v = c["verify"]["all"]
        assert 0 <= v["false_accept_rate"] <= 1 and 0 <= v["false_reject_rate"] <= 1
        assert v["eer"] == pytest.approx(c["eer"])  # the same trials as the condition's EER
    worst = default["open_set_worst"]
    assert worst["false_accept_rate"] == max(table.values()) == table[worst["condition"], str(worst["group_size"])]
    for K, r in default["open_set_by_size"].items():  # clean: the clean open-set table's figures
        assert conds["clean"]["open_set"]["all"]["by_size"][K]["false_accept_rate"] == pytest.approx(
            r["false_accept_rate"]
        )
        assert conds["clean"]["open_set"]["all"]["by_size"][K]["false_reject_rate"] == pytest.approx(
            r["false_reject_rate"]
        )
    md = (out / "report.md").read_text()
    assert "## Unknown and verify in each condition, per corpus" in md and "**clean enrollment**" in md
    assert "Worst cell: " in md and "| babble10 | all (5) |" in md and "ls-*: no such speakers" in md
    assert md.index("## Rooms, noise and microphones") < md.index("## Unknown and verify in each condition")


def test_recorded_noise_conditions_take_the_held_out_part_of_each_recording(dataset, tmp_path, capsys):
    import soundfile as sf

    from fewshot.eval.conditions import load_recordings

    t = np.arange(9 * 16000) / 16000
    sf.write(tmp_path / "tap.flac", np.where(t < 6, np.sin(2 * np.pi * 200 * t), np.sin(2 * np.pi * 900 * t)), 16000)
    (held_out,) = load_recordings(tmp_path)
    assert len(held_out) == 3 * 16000
    spec, f = np.abs(np.fft.rfft(held_out)) ** 2, np.fft.rfftfreq(len(held_out), 1 / 16000)
    assert spec[np.abs(f - 900) < 5].sum() > 0.9 * spec.sum()
    # without recordings, the rec* conditions are refused before any work, naming the folder
    rc = evaluate(dataset, tmp_path / "r", "--conditions rec10 --noise", str(tmp_path / "none"))
    assert rc == 2 and "none" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_evaluate_runs_the_calibrated_decision_identify_runs(dataset, models, tmp_path):
    """A model calibrated for open-set use is evaluated at the threshold of each group's size and the target rate."""
    import shutil

    from fewshot.groups.openset import Calibration, load_calibration
    from fewshot.model.extractor import load_extractor
    from fewshot.model.modeldir import read_model_meta, write_model_meta
    from fewshot.persistence import file_digest

    model = tmp_path / "calibrated"
    shutil.copytree(models / "tiny", model)
    cohort = np.random.default_rng(0).standard_normal((20, 16)).astype(np.float32)
    np.save(model / "cohort-t.npy", cohort / np.linalg.norm(cohort, axis=1, keepdims=True))
    cal = Calibration(
        cohort=cohort,
        top_k=5,
        group_sizes=np.array([1.0, 3.0]),
        false_accept_rates=np.array([0.01, 0.2]),
        thresholds=np.array([[1.5, 0.5], [2.5, 1.0]]),
    )
    meta = read_model_meta(model)[0]
    meta["open_set"] = cal.to_meta("cohort-t.npy", file_digest(model / "cohort-t.npy"))
    meta["classifier"] = {"false_accept_rate": 0.05}
    write_model_meta(model, meta)
    out = tmp_path / "report"
    assert (
        evaluate(dataset, out, "--draws 2 --group-sizes 3 --enroll-seconds 15 --curve-seconds 15 --strict", model=model)
        == 0
    )
    m = json.loads((out / "metrics.json").read_text())
    shipped = load_calibration(load_extractor(model))
    assert m["systems"]["default"]["unknown_rule"].startswith("AS-normalised score") and "--strict" in m["command"]
    by_size = m["systems"]["default"]["open_set_by_size"]
    assert by_size["1"]["threshold"] == pytest.approx(shipped.threshold(1, 0.01)) == pytest.approx(1.5)
    assert by_size["3"]["threshold"] == pytest.approx(shipped.threshold(3, 0.01)) == pytest.approx(2.5)


def test_paired_comparison_counts_the_pieces_only_one_system_gets_right():
    from fewshot.eval.benchmark import paired_comparison

    a = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 1], bool)
    b = np.array([1, 1, 1, 0, 0, 0, 0, 1, 1, 1], bool)
    c = paired_comparison(a, b)
    assert (c["only_a_right"], c["only_b_right"], c["pieces"]) == (4, 2, 10)
    assert c["mcnemar_p"] == pytest.approx(22 / 32)  # two-sided exact binomial: P(X <= 2 or X >= 4), X ~ B(6, 1/2)
    assert paired_comparison(a, a)["mcnemar_p"] == 1.0


def test_compare_models_script(dataset, models, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "compare_models.py"
    spec = importlib.util.spec_from_file_location("compare_models", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    tiny = str(models / "tiny")
    assert script.main([tiny, tiny, "--dev", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "right with" in out and "only: 0; with" in out and "p = 1.00" in out
    assert script.main([tiny, tiny, "--dev", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing" in err


def test_evaluate_enrolls_with_degraded_copies_when_the_model_does(dataset, models, tmp_path):
    """A model whose groups enroll with degraded copies (multi-condition) is evaluated with them."""
    import shutil

    from fewshot.config import ClassifierConfig
    from fewshot.eval.protocol import embed_protocol, episode, prepare_protocol
    from fewshot.model.extractor import load_extractor
    from fewshot.model.modeldir import read_model_meta, write_model_meta

    model = tmp_path / "multi"
    shutil.copytree(models / "tiny", model)
    meta = read_model_meta(model)[0]
    meta["classifier"] = {"multi_condition": True}
    write_model_meta(model, meta)
    out = tmp_path / "report"
    assert (
        evaluate(dataset, out, "--draws 1 --group-sizes all --enroll-seconds 15 --curve-seconds 15", model=model) == 0
    )
    reported = json.loads((out / "metrics.json").read_text())["systems"]["default"]["closed_set"]["15"]["all"]
    ex = load_extractor(model)
    cc = ClassifierConfig.of_model(ex)
    speakers = prepare_protocol(dataset, enroll_seconds=(15.0,))
    r = episode(
        embed_protocol(ex, speakers, copies=True), np.arange(len(speakers)), T=15.0, classifier=cc, open_set=False
    )
    # enrolled without the copies, this model gets 0.87 here: the figure tells the two apart
    assert cc.multi_condition and reported["accuracy_mean"] == pytest.approx(float(np.mean(r["y_true"] == r["y_pred"])))


def _figures(tree):
    """Every number and string of a metrics.json tree, without what differs from run to run (times, command)."""
    if isinstance(tree, dict):
        return {k: _figures(v) for k, v in tree.items() if k not in ("timing_s", "created", "command")}
    if isinstance(tree, list):
        return [_figures(v) for v in tree]
    return pytest.approx(tree, rel=1e-5, abs=1e-6) if isinstance(tree, float) else tree


@pytest.mark.cluster
def test_evaluate_on_ray_reports_what_one_process_reports(dataset, tmp_path, capsys):
    """`--cluster local`: the shipped model (identify's backend, multi-condition copies, calibrated decision)
    embedded by Ray tasks in worker processes gives the report of one process."""
    import re
    import subprocess
    import sys

    from fewshot.cli import main

    args = [
        str(dataset),
        "--draws",
        "3",
        "--group-sizes",
        "3",
        "all",
        "--enroll-seconds",
        "15",
        "--curve-seconds",
        "15",
    ]
    assert main(["evaluate", *args, "--out", str(tmp_path / "here")]) == 0
    here = capsys.readouterr().out
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fewshot.cli",
            "evaluate",
            *args,
            "--out",
            str(tmp_path / "ray"),
            "--cluster",
            "local",
            "--progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # the work went to Ray: more chunks than the one chunk of 8 speakers embedded in one process
    chunks = re.findall(r"Embedding \(fewshot CNN\): +\d+%\|.*?\| \d+/(\d+) ", proc.stderr)
    assert chunks and int(chunks[0]) > 1, proc.stderr
    ray_lines, here_lines = (re.sub(r"report: \S+ \(\d+ s\)", "report", t) for t in (proc.stdout, here))
    assert ray_lines == here_lines  # the same table and lines, but for the report's folder and time
    ray_run, one = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("ray", "here"))
    assert ray_run["command"].endswith("--cluster local")
    assert _figures(ray_run) == _figures(one)


def test_evaluate_on_ray_without_ray_is_one_line(dataset, tmp_path):
    """Without the 'data' extra, `--cluster` is refused in one line before any work; without it, nothing changes."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['ray'] = None  # as if not installed: importing it raises ImportError\n"
        "from fewshot.cli import main\n"
        "print(main(['evaluate', sys.argv[1], '--out', sys.argv[2], '--cluster', 'local']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(dataset), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stdout.split() == ["2"], proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        (
            "error: fewshot evaluate needs ray, which the 'data' extra installs: pip install 'fewshot[data]' "
            "(in a clone: bash scripts/setup.sh installs every extra)"
        )
    ]
    assert not (tmp_path / "out").exists()


def test_evaluate_on_an_unreachable_cluster_is_one_line(dataset, tmp_path, capsys):
    from fewshot.cli import main
    from local_cluster import free_ports

    pytest.importorskip("ray", reason="the data extra (pip install -e '.[data]') is not installed")
    (port,) = free_ports(1)
    assert main(["evaluate", str(dataset), "--out", str(tmp_path / "out"), "--cluster", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: no Ray head node answers at 127.0.0.1:{port}") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
