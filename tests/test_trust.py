"""Trust at the command line: `finetune` saves a temperature and a threshold for unknown photos, `predict` flags a
photo of a class the model never saw (on `model.pth` and on its exported `.onnx` alike), `evaluate --ood` scores the
flag and writes `metrics.json`, and a model file from before any of this still predicts, saying why it has no flag.
The numbers themselves (calibration error worked by hand, the threshold's share, argmax unchanged) are tested in
the chapters that define them: nbs/04_2_evaluation, nbs/07c_trust."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import ftbook
from ftbook.check import make_synthetic

TINY = ["--arch", "efficientnet_lite0", "--size", "32", "--bs", "8"]


def one_line_error(r, *parts):
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("ftbook "), r.stderr
    for part in parts: assert part in lines[0], (part, lines[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    "A probe on circles and squares, and photos of none of its classes: random noise."
    root = tmp_path_factory.mktemp("trust")
    shapes = make_synthetic(root / "shapes", n_train=10, n_valid=6, n_test=3, size=48)
    r = ftbook("finetune", shapes, "--method", "probe", "--epochs", "3", *TINY, "--out", root / "run")
    assert r.returncode == 0, r.stderr
    noise = root / "noise"
    noise.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(noise / f"n{i}.png")
    return shapes, root / "run", noise, r


def test_finetune_saves_and_reports_its_temperature_and_threshold(trained):
    shapes, run, _, r = trained
    m = json.loads((run / "metrics.json").read_text())
    ck = torch.load(run / "model.pth", weights_only=True)
    assert ck["temperature"] == m["trust"]["temperature"] and ck["ood"] == m["trust"]["ood"]
    assert ck["bank"].shape[0] == m["trust"]["ood"]["bank_images"] == 20  # every training image
    assert {"ece", "ece_before_temperature", "nll", "flagged_unknown"} <= set(m["test"])
    assert "temperature" in r.stdout and "unknown photos:" in r.stdout


def test_predict_flags_a_kind_it_never_saw_on_pth_and_onnx(trained, tmp_path):
    shapes, run, noise, _ = trained
    r = ftbook("predict", run / "model.pth", noise, shapes / "test", "--out", tmp_path / "p.csv")
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns) == ["path", "label", "probability", "unknown", "ood_score"]
    is_noise = table.path.str.contains("noise")
    assert table.unknown[is_noise].all() and set(table.label) <= {"circle", "square"}  # the top class stays
    assert r.stdout.count("looks like none of the classes") == table.unknown.sum()
    x = ftbook("export", run / "model.pth", "--out", tmp_path / "m.onnx")
    assert x.returncode == 0, x.stderr
    o = ftbook("predict", tmp_path / "m.onnx", noise, shapes / "test", "--out", tmp_path / "o.csv")
    onnx = pd.read_csv(tmp_path / "o.csv")
    # the same flags; the numbers as close as bf16 (model.pth where the CPU has it) is to float32 (ONNX)
    assert (onnx.unknown == table.unknown).all() and np.allclose(onnx.ood_score, table.ood_score, atol=0.03)
    assert np.allclose(onnx.probability, table.probability, atol=0.03)  # the temperature travels too
    off = ftbook("predict", run / "model.pth", noise, "--no-unknown", "--out", tmp_path / "off.csv")
    assert list(pd.read_csv(tmp_path / "off.csv").columns) == ["path", "label", "probability"]
    assert "none of the classes" not in off.stdout and off.stderr == ""


def test_an_old_model_file_predicts_without_the_flag_and_says_why(trained, tmp_path):
    shapes, run, noise, _ = trained
    ck = torch.load(run / "model.pth", weights_only=True)
    old = {k: v for k, v in ck.items() if k not in ("temperature", "ood", "bank")}
    torch.save(old, tmp_path / "old.pth")
    r = ftbook("predict", tmp_path / "old.pth", noise, "--out", tmp_path / "old.csv")
    assert r.returncode == 0, r.stderr
    assert list(pd.read_csv(tmp_path / "old.csv").columns) == ["path", "label", "probability"]
    assert r.stderr.startswith("ftbook predict: ") and "without a threshold for unknown photos" in r.stderr
    one_line_error(ftbook("evaluate", tmp_path / "old.pth", shapes, "--ood", noise), "without a feature bank")


def test_evaluate_scores_the_flag_and_writes_metrics(trained, tmp_path):
    shapes, run, noise, _ = trained
    r = ftbook("evaluate", run / "model.pth", shapes, "--split", "test", "--ood", noise, "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert {"accuracy", "ece", "ece_before_temperature", "nll", "auroc", "fpr95"} <= set(m)
    assert m["auroc"] == 1.0 and m["fpr95"] == 0.0 and m["ood_images"] == 8 and m["ood_flagged"] == 1.0
    assert (tmp_path / "reliability.png").exists() and "AUROC 1.0000" in r.stdout
    v = ftbook("evaluate", run / "model.pth", shapes, "--ood", shapes / "test")  # its own classes
    assert v.returncode == 0 and "not about unknowns" in v.stderr and "optimistic" in v.stdout, v.stderr
    (tmp_path / "empty").mkdir()
    one_line_error(ftbook("evaluate", run / "model.pth", shapes, "--ood", tmp_path / "empty"), "no images")
