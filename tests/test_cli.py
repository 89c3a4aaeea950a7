"""The `ftbook` console script, run as a user would: help, version, check, finetune, predict, study, bench, errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftbook import __version__
from ftbook.data import make_synthetic

FTBOOK = str(Path(sys.executable).parent / "ftbook")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "FTBOOK_PROFILE": "quick"}


def ftbook(*args, timeout=600):
    return subprocess.run([FTBOOK, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("cli") / "shapes", n_train=10, n_valid=6, size=48)


def test_help_and_version():
    r = ftbook("--help")
    assert r.returncode == 0 and all(c in r.stdout for c in ["check", "finetune", "predict", "study", "bench"])
    assert ftbook("--version").stdout.strip() == f"ftbook {__version__}"
    assert "--method" in ftbook("finetune", "--help").stdout


def test_help_does_not_import_torch():
    code = "import sys; from ftbook.cli import build_parser; build_parser(); print('torch' in sys.modules, 'fastai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split()
    assert out == ["False", "False"]


def test_check_exit_codes_and_json(shapes, tmp_path):
    assert ftbook("check", shapes).returncode == 0
    r = ftbook("check", shapes, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True
    one_class = tmp_path / "one"
    for split in ("train", "val"):
        (one_class / split / "a").mkdir(parents=True)
        (one_class / split / "a" / "x.jpg").write_bytes((shapes / split / "circle").glob("*").__next__().read_bytes())
    r = ftbook("check", one_class)
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout
    r = ftbook("check", tmp_path / "missing")
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout


def test_finetune_writes_four_files_and_predict_reads_them(shapes, tmp_path):
    out = tmp_path / "run"
    r = ftbook("finetune", shapes, "--method", "gradual", "--epochs", "1", "--size", "48", "--bs", "8", "--out", out)
    assert r.returncode == 0, r.stderr
    for f in ["history.csv", "metrics.json", "model.pth", "curves.png"]:
        assert (out / f).stat().st_size > 0, f
    m = json.loads((out / "metrics.json").read_text())
    for k in ["best_epoch", "best_accuracy", "final_accuracy", "best_valid_loss", "train_images_per_second", "seconds"]:
        assert k in m
    import pandas as pd
    h = pd.read_csv(out / "history.csv")
    best = h.loc[h.valid_loss.idxmin()]  # best_epoch is by validation loss; best_accuracy is the highest of any epoch
    assert (m["best_epoch"], m["best_epoch_accuracy"], m["best_valid_loss"]) == (best.epoch, best.accuracy, best.valid_loss)
    assert m["best_accuracy"] == h.accuracy.max() and m["final_accuracy"] == h.accuracy.iloc[-1]
    assert "lowest validation loss at epoch" in r.stdout
    assert m["settings"]["method"] == "gradual" and m["settings"]["size"] == 48 and m["classes"] == ["circle", "square"]
    imgs = sorted((shapes / "val").rglob("*.*"))[:2]
    r = ftbook("predict", out / "model.pth", *imgs)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        path, label, prob = line.split("\t")
        assert label in ("circle", "square") and 0.5 <= float(prob) <= 1.0


def test_default_recipe_is_lpft(shapes, tmp_path):
    out = tmp_path / "lpft"
    r = ftbook("finetune", shapes, "--arch", "efficientnet_lite0", "--size", "48", "--bs", "8", "--out", out)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["settings"]["method"] == "lpft" and m["settings"]["lr"] == 5e-3
    import pandas as pd
    h = pd.read_csv(out / "history.csv")
    assert h.epoch.tolist() == list(range(1, 12)) and h.phase.tolist() == ["head"] * 10 + ["ft top 1"]
    assert h.cached.tolist() == [True] * 10 + [False]


def test_finetune_fastai_method(shapes, tmp_path):
    out = tmp_path / "fa"
    r = ftbook("finetune", shapes, "--method", "fastai", "--epochs", "1", "--size", "48", "--bs", "8", "--out", out)
    assert r.returncode == 0, r.stderr
    hist = (out / "history.csv").read_text().splitlines()
    assert len(hist) == 3 and ",frozen," in hist[1] and ",unfrozen," in hist[2]
    img = sorted((shapes / "val").rglob("*.*"))[0]
    r = ftbook("predict", out / "model.pth", img)
    assert r.returncode == 0, r.stderr


def test_user_errors_are_one_line(shapes, tmp_path):
    for args in [("finetune", tmp_path / "nope", "--out", tmp_path / "x"),
                 ("finetune", shapes, "--arch", "vgg99", "--out", tmp_path / "x"),
                 ("predict", tmp_path / "missing.pth", shapes)]:
        r = ftbook(*args)
        assert r.returncode == 1, (args, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.startswith("ftbook ")
    r = ftbook("finetune", shapes, "--method", "magic", "--out", tmp_path / "x")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_study_writes_csvs(shapes, tmp_path):
    out = tmp_path / "study"
    r = ftbook("study", shapes, "--epochs", "2", "--seeds", "2", "--size", "40", "--out", out)
    assert r.returncode == 0, r.stderr
    import pandas as pd
    study = pd.read_csv(out / "study.csv")
    assert len(study) == 4 * 2 * 2  # variants x seeds x epochs
    assert set(study.variant) == {"fine_tune", "head", "lp_ft", "scratch"}
    assert (out / "summary.csv").exists() and (out / "curves.png").exists()
