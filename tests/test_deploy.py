"""Before and after training, as a user runs them: `ftbook check --labels` finds planted label mistakes (exact rows)
and changes nothing; `finetune --exclude` leaves rows out; `ftbook export` writes an .onnx file that `predict` and
`evaluate` read with the same labels as model.pth; a missing optional extra is one line naming it."""
import json
import os

import pandas as pd
import pytest

from conftest import ftbook, ftbook_process, snapshot
from ftbook.check import load_dataset, make_synthetic

TINY = ["--arch", "efficientnet_lite0", "--size", "32", "--bs", "8"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    "Shapes in class folders, as a CSV whose labels are wrong on four training rows."
    root = tmp_path_factory.mktemp("labels")
    shapes = make_synthetic(root / "shapes", classes=("circle", "square", "triangle"), n_train=24, n_valid=4,
                            size=64, flat=True)
    items = load_dataset(shapes)
    wrong = items.index[items.split == "train"][[1, 7, 28, 49]]
    items.loc[wrong, "label"] = ["square", "triangle", "circle", "circle"]
    items[["path", "label", "split"]].to_csv(root / "labels.csv", index=False)
    return root / "labels.csv", set(items.path[wrong])


def test_check_labels_finds_the_planted_mistakes_and_changes_nothing(planted, tmp_path):
    csv, wrong = planted
    before = snapshot(csv.parent)
    r = ftbook("check", csv, "--labels", "--arch", "efficientnet_lite0", "--size", "128", "--out", tmp_path)
    assert r.returncode in (0, 1), r.stderr
    issues = pd.read_csv(tmp_path / "label_issues.csv")
    assert set(issues.path) == wrong  # exactly the four rows
    assert list(issues.columns) == ["path", "split", "given", "suggested", "confidence", "given_probability", "rank"]
    assert issues["rank"].tolist() == [1, 2, 3, 4] and (tmp_path / "label_issues.png").exists()
    assert "4 suspected label mistakes among" in r.stdout and (tmp_path / "check.json").exists()
    made = json.loads((tmp_path / "label_provenance.json").read_text())  # how the list was made
    assert made["suspects"] == 4 and made["command"].startswith("ftbook check") and made["size"] == 128
    assert snapshot(csv.parent) == before
    r = ftbook("finetune", csv, "--method", "probe", "--epochs", "1", *TINY, "--exclude",
               tmp_path / "label_issues.csv", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert f"ftbook finetune: excluded 4 images listed in {tmp_path / 'label_issues.csv'}" in r.stderr
    assert not set(pd.read_csv(tmp_path / "run" / "split.csv").path) & wrong
    one_line = ftbook("check", csv, "--labels")
    assert one_line.returncode == 1 and one_line.stderr.strip() == \
        "ftbook check: error: --labels writes its findings: give --out"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    shapes = make_synthetic(root / "shapes", n_train=8, n_valid=4, n_test=3, size=48)
    # float32: model.pth is then scored as the .onnx file is, on a CPU with native bf16 too ("auto" would be bf16)
    r = ftbook("finetune", shapes, "--method", "probe", "--epochs", "2", *TINY, "--precision", "fp32",
               "--out", root / "run")
    assert r.returncode == 0, r.stderr
    return shapes, root / "run" / "model.pth"


def test_export_round_trip_gives_the_same_labels(trained, tmp_path):
    shapes, model = trained
    for source, extra, name in ((model, [], "model.onnx"),
                                (tmp_path / "model.onnx", ["--int8", "--data", shapes], "int8.onnx")):
        r = ftbook("export", source, "--format", "onnx", *extra, "--out", tmp_path / name)
        assert r.returncode == 0, r.stderr
        assert f"wrote {tmp_path / name}" in r.stdout and "top class the same on" in r.stdout
    preds = {}
    for name in ("model.pth", "model.onnx"):
        file = model if name == "model.pth" else tmp_path / name
        r = ftbook("predict", file, shapes / "test", "--out", tmp_path / f"{name}.csv")
        assert r.returncode == 0, r.stderr
        preds[name] = pd.read_csv(tmp_path / f"{name}.csv")
    assert preds["model.pth"].label.tolist() == preds["model.onnx"].label.tolist()
    assert (preds["model.pth"].probability - preds["model.onnx"].probability).abs().max() < 1e-4
    ev = ftbook("evaluate", tmp_path / "model.onnx", shapes, "--split", "test")
    assert ev.returncode == 0 and "test: 6 images" in ev.stdout, ev.stderr
    assert ftbook("predict", tmp_path / "int8.onnx", shapes / "test").returncode == 0
    bad = ftbook("export", model, "--out", tmp_path / "model.bin")
    assert bad.returncode == 1 and "must end in .onnx" in bad.stderr


def test_a_missing_extra_is_one_line_naming_it(trained, tmp_path):
    "Without an extra's library (hidden from the interpreter), export and check --labels say which extra to install."
    shapes, model = trained
    hide = tmp_path / "hide"
    hide.mkdir()
    for module in ("onnxscript", "cleanlab"):
        (hide / module).mkdir()
        (hide / module / "__init__.py").write_text("raise ImportError('hidden for the test')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(hide), *filter(None, [os.environ.get("PYTHONPATH")])])}
    r = ftbook_process("export", model, "--out", tmp_path / "m.onnx", env=env)
    assert r.returncode == 1 and r.stderr.strip() == "ftbook export: error: onnxscript is not installed: pip install 'ftbook[deploy]'"
    r = ftbook_process("check", shapes, "--labels", "--out", tmp_path / "l", env=env)
    assert r.stderr.strip() == "ftbook check: error: cleanlab is not installed: pip install 'ftbook[labels]'"


def test_export_space_writes_a_space_without_torch(trained, tmp_path):
    "`export --space DIR`: model.onnx, app.py, requirements.txt (no torch), README.md; app.py's answers are tested in nbs/07b."
    shapes, model = trained
    r = ftbook("export", model, "--space", tmp_path / "space")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "space").iterdir()) == [".gitattributes", "README.md", "app.py", "model.onnx",
                                                                      "requirements.txt"]
    assert "torch" not in (tmp_path / "space" / "requirements.txt").read_text()
    assert "sdk: gradio" in (tmp_path / "space" / "README.md").read_text() and "wrote a Space" in r.stdout
    both = ftbook("export", model, "--space", tmp_path / "s2", "--out", tmp_path / "m.onnx")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
