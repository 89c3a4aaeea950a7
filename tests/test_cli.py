"""The `ftbook` command as a user runs it: every layout end to end, bad input, the files of a run, evaluate,
predict on folders, resume after Ctrl-C and after a full disk, terminal output, phone photos, malicious model
files, every message in ftbook's words, the flags a resume ignores, study, sizes. Its `main` runs in this process
with both file descriptors captured (`conftest.ftbook`); a new process where the process is the point: every
command's stderr on messy data (warnings raised while importing included), Ctrl-C, a full disk."""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import ftbook, ftbook_process, ftbook_started, snapshot
from ftbook.check import check_dataset, make_synthetic

TINY = ["--arch", "efficientnet_lite0", "--size", "32", "--bs", "8"]  # the offline backbone, small and fast
STABLE = ["epoch", "stage", "train_loss", "valid_loss", "accuracy"]  # history columns without timings


def one_line_error(r, *parts):
    assert r.returncode != 0 and "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ftbook "), r.stderr
    for part in parts: assert part in lines[0], (part, lines[0])


def only_ftbook_lines(stderr: str):
    "Every line on stderr is one of ftbook's own: no warning machinery, no traceback, no library's words."
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert all(re.match(r"ftbook [a-z-]+: ", line) for line in lines), stderr
    assert not re.search(r"Warning|Traceback|\.py:\d+", stderr), stderr
    return lines


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("cli") / "shapes", n_train=10, n_valid=6, n_test=3, size=48)


@pytest.fixture(scope="module")
def run(shapes, tmp_path_factory):
    "A probe of three epochs on split folders with a test split."
    out = tmp_path_factory.mktemp("run") / "out"
    r = ftbook("finetune", shapes, "--method", "probe", "--epochs", "3", *TINY, "--out", out)
    assert r.returncode == 0, r.stderr
    return out, r


def layouts(root: Path, shapes: Path) -> dict:
    "The same images in every accepted layout (copies: user data is never touched)."
    files = sorted(p for p in shapes.rglob("*") if p.is_file())
    out = {}
    for name in ("val", "valid", "validation"):  # split folders
        d = root / "folders" / name
        for p in files:
            rel = p.relative_to(shapes)
            split = name if rel.parts[0] == "val" else rel.parts[0]
            (d / split / rel.parts[1]).mkdir(parents=True, exist_ok=True)
            shutil.copy(p, d / split / rel.parts[1] / p.name)
        out[name] = d
    for p in files:  # class folders, zipped in one more folder, images nested one level in a class
        dest = root / "classes" / "wrapper" / p.parent.name / ("sub" if "test" in p.name else "")
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest / p.name)
    out["classes"] = root / "classes"
    rows = [dict(path=str(p.relative_to(shapes)), label=p.parent.name,
                 split={"val": "valid"}.get(p.relative_to(shapes).parts[0], p.relative_to(shapes).parts[0]))
            for p in files]
    csv = root / "csv"
    csv.mkdir()
    for split in ("train", "val", "test"): (csv / split).symlink_to(shapes / split)  # relative to the CSV
    pd.DataFrame(rows).to_csv(csv / "labels.csv", index=False)
    pd.DataFrame(rows).drop(columns="split").to_csv(csv / "nosplit.csv", index=False)
    out["csv"], out["csv without split"] = csv / "labels.csv", csv / "nosplit.csv"
    return out


def test_help_lists_every_command():
    "`--help` lists every command (`--version` is checked on the installed wheel, the light import in test_install)."
    r = ftbook("--help")
    assert r.returncode == 0
    for c in ["check", "finetune", "evaluate", "predict", "study", "data-size", "bench", "export", "demo", "trust-study"]: assert c in r.stdout
    assert "lp_ft_top" in ftbook("finetune", "--help").stdout


def test_every_layout_trains_end_to_end(shapes, tmp_path):
    before = snapshot(shapes)
    cases = layouts(tmp_path / "layouts", shapes)
    for name, data in cases.items():
        out = tmp_path / "runs" / name.replace(" ", "_")
        assert check_dataset(data).ok, name
        r = ftbook("finetune", data, "--method", "probe", "--epochs", "1", *TINY, "--out", out)
        assert r.returncode == 0, (name, r.stderr)
        m = json.loads((out / "metrics.json").read_text())
        split = pd.read_csv(out / "split.csv")
        assert len(split) == 2 * (10 + 6 + 3), name  # every image, with its split
        assert m["data"]["layout"] == {"classes": "classes", "csv": "csv",
                                       "csv without split": "csv"}.get(name, "folders")
        if name in ("classes", "csv without split"):  # no validation split given: 20 % of each class, seeded
            assert m["data"]["valid_split"] == "20% of each class, seed 0", name
            assert (split.split == "valid").sum() == 2 * round(0.2 * 19) and "test" not in m
        else:
            assert m["data"]["valid_split"] == "given" and m["test"]["n"] == 6, name
            assert (out / "test" / "per_class.csv").exists()
        assert f"{m['data']['layout']} layout" in r.stdout
    assert snapshot(shapes) == before  # the user's data is never modified


def test_bad_layouts_are_one_line_listing_the_accepted_ones(tmp_path):
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "a.jpg").write_bytes(b"x")
    (tmp_path / "only_val" / "val" / "a").mkdir(parents=True)
    for data in (tmp_path / "missing", tmp_path / "loose", tmp_path / "only_val"):
        r = ftbook("finetune", data, "--out", tmp_path / "out")
        one_line_error(r, str(data), "accepted layouts: train/<class>/<images>", "a CSV file with columns")
        r = ftbook("check", data)
        one_line_error(r, "ftbook check: error:", "accepted layouts")
        assert r.returncode == 2
        j = ftbook("check", data, "--json")
        assert j.returncode == 2 and "accepted layouts" in json.loads(j.stdout)["error"]
    (tmp_path / "bad.csv").write_text("file,class\na.jpg,cat\n")
    one_line_error(ftbook("finetune", tmp_path / "bad.csv", "--out", tmp_path / "out"), "a CSV needs path and label")


def test_a_run_writes_its_files_and_keeps_the_best_weights(run):
    out, r = run
    for f in ["model.pth", "last.pth", "metrics.json", "history.csv", "split.csv", "curves.png", "settings.json",
              "valid/per_class.csv", "valid/confusion.png", "valid/predictions.csv", "test/per_class.csv",
              "checkpoints/last.pth", "checkpoints/best.pth"]:
        assert (out / f).stat().st_size > 0, f
    m, h = json.loads((out / "metrics.json").read_text()), pd.read_csv(out / "history.csv")
    best = h.loc[h.valid_loss.idxmin()]
    assert (m["best_epoch"], m["best_valid_accuracy"], m["best_valid_loss"]) == (best.epoch, best.accuracy, best.valid_loss)
    assert m["max_valid_accuracy"] == h.accuracy.max() and m["final_valid_accuracy"] == h.accuracy.iloc[-1]
    assert m["saved"]["model"] == f"best weights by validation loss (epoch {int(best.epoch)}, frozen)"
    saved = torch.load(out / "model.pth", weights_only=True)  # tensors and plain values only
    ckpt = torch.load(out / "checkpoints" / "best.pth", weights_only=True)["model"]
    assert all(torch.equal(saved["state_dict"][k].cpu(), v.cpu()) for k, v in ckpt.items())
    assert m["valid"]["accuracy"] == pytest.approx(best.accuracy)  # the saved model, rescored
    assert set(m["images_per_second"]) == {"frozen"} and m["images_per_second"]["frozen"] > 0
    assert m["settings"]["method"] == "probe" and m["data"]["classes"] == ["circle", "square"]
    assert "test" in m and m["test"]["n"] == 6 and "balanced_accuracy" in m["test"]
    assert "saved model.pth: best weights by validation loss" in r.stdout and "test accuracy" in r.stdout
    assert "the split that chose these weights" in r.stdout


def test_terminal_output_is_one_line_per_epoch(run, shapes, tmp_path):
    out, r = run
    lines = r.stdout.splitlines()
    assert lines[0].startswith("data: folders layout, 20 train / 12 valid / 6 test images, 2 classes")
    assert lines[1].split()[:3] == ["epoch", "stage", "train_loss"]  # the data summary comes first
    assert [line.split()[0] for line in lines[2:5]] == ["1", "2", "3"]
    assert len(r.stdout) < 2000 and "\r" not in r.stdout  # no progress bars when stdout is not a terminal
    q = ftbook("finetune", shapes, "--method", "probe", "--epochs", "2", "--quiet", *TINY, "--out", tmp_path / "q")
    assert q.returncode == 0 and not any(line.split()[0] in ("1", "2") for line in q.stdout.splitlines())
    assert not q.stdout.startswith("data:")


def test_evaluate_per_class_on_valid_and_test(run, shapes, tmp_path):
    out, _ = run
    for split in ("valid", "test"):
        r = ftbook("evaluate", out / "model.pth", shapes, "--split", split, "--out", tmp_path / split)
        assert r.returncode == 0, r.stderr
        assert f"{split}: " in r.stdout and "balanced accuracy" in r.stdout and "circle" in r.stdout
        per_class = pd.read_csv(tmp_path / split / "per_class.csv")
        assert per_class["class"].tolist() == ["circle", "square"]
        assert per_class.support.sum() == (6 if split == "test" else 12)
        for f in ["confusion.png", "predictions.csv"]: assert (tmp_path / split / f).exists()
    tta = ftbook("evaluate", out / "model.pth", shapes, "--tta")
    assert tta.returncode == 0 and "valid (flip TTA): 12 images" in tta.stdout, tta.stderr
    no_test = make_synthetic(tmp_path / "no_test", n_train=4, n_valid=2, size=48)
    one_line_error(ftbook("evaluate", out / "model.pth", no_test, "--split", "test"), "no test split")


def test_predict_files_and_folders(run, shapes, tmp_path):
    out, _ = run
    folder = tmp_path / "photos"
    shutil.copytree(shapes / "test", folder / "nested")
    (folder / "broken.jpg").write_text("not an image")
    r = ftbook("predict", out / "model.pth", folder, shapes / "val" / "circle" / "circle_val000.jpg",
               "--top-k", "2", "--out", tmp_path / "preds.csv")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 6 + 1  # the folder's images, recursively, and the file
    assert "skipped" in r.stderr and "broken.jpg" in r.stderr and "not an image" in r.stderr
    preds = pd.read_csv(tmp_path / "preds.csv")
    assert list(preds.columns) == ["path", "label", "probability", "label_2", "probability_2", "unknown", "ood_score"]
    assert (preds.probability >= preds.probability_2).all() and set(preds.label) <= {"circle", "square"}
    from ftbook.cli import predict  # the Python contract of release 0.1: (path, label, probability)
    got = predict(out / "model.pth", [shapes / "test"])
    assert len(got) == 6 and all(isinstance(p, str) and isinstance(c, str) and 0.5 <= q <= 1 for p, c, q in got)
    r = ftbook("predict", out / "model.pth", shapes / "test", "--tta", "--out", tmp_path / "tta.csv")
    assert r.returncode == 0, r.stderr
    tta = pd.read_csv(tmp_path / "tta.csv")  # flip TTA's numbers are tested in nbs/04
    flipped = predict(out / "model.pth", [shapes / "test"], tta=True)
    assert tta.path.tolist() == [p for p, _, _ in flipped] == [p for p, _, _ in got]
    assert np.allclose(tta.probability, [q for _, _, q in flipped], atol=1e-4)
    ev = ftbook("evaluate", out / "model.pth", shapes, "--split", "test", "--out", tmp_path / "ev")
    assert ev.returncode == 0, ev.stderr  # read once by predict, through the loader by evaluate: same numbers
    scored = pd.read_csv(tmp_path / "ev" / "predictions.csv").set_index("path").probability
    assert np.allclose([q for _, _, q in got], scored[[p for p, _, _ in got]], atol=1e-6)
    only_broken = ftbook("predict", out / "model.pth", folder / "broken.jpg")
    assert only_broken.returncode == 1 and "Traceback" not in only_broken.stderr
    assert only_broken.stderr.splitlines()[-1] == "ftbook predict: error: no readable image among the given paths"
    one_line_error(ftbook("predict", out / "model.pth", tmp_path / "nowhere.jpg"), "no such file or folder")
    one_line_error(ftbook("predict", tmp_path / "preds.csv", shapes), "not a model file")


def test_resume_after_ctrl_c_equals_an_uninterrupted_run(shapes, tmp_path):
    "Two runs in new processes, the second stopped by a real SIGINT once its fifth epoch is checkpointed."
    args = ["finetune", shapes, "--epochs", "25", "--probe-epochs", "3", *TINY]
    whole = ftbook_process(*args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    cut = tmp_path / "cut"
    p = ftbook_started(*args, "--out", cut)
    last = cut / "checkpoints" / "last.pth"
    deadline = time.time() + 300
    while time.time() < deadline and (not last.exists() or torch.load(last, weights_only=True)["epoch"] < 5):
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)  # Ctrl-C in the middle of the fine-tuning epochs
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130 and "resume with: ftbook finetune" in stderr and "--resume" in stderr, (
        stdout, stderr)
    done = torch.load(last, weights_only=True)["epoch"]
    assert 5 <= done < 28
    r = ftbook("finetune", shapes, "--out", cut, "--resume")  # the settings come from cut/settings.json
    assert r.returncode == 0, r.stderr
    a, b = (pd.read_csv(d / "history.csv")[STABLE] for d in (tmp_path / "whole", cut))
    pd.testing.assert_frame_equal(a, b)
    one_line_error(ftbook("finetune", shapes, "--out", tmp_path / "never", "--resume"), "no checkpoint to resume")


def test_default_recipe_and_method_names(shapes, tmp_path):
    r = ftbook("finetune", shapes, *TINY, "--epochs", "1", "--out", tmp_path / "recipe")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "recipe" / "metrics.json").read_text())
    assert m["settings"]["method"] == "lp_ft_top" and m["settings"]["probe_epochs"] == 10
    assert pd.read_csv(tmp_path / "recipe" / "history.csv").stage.tolist() == ["frozen"] * 10 + ["fine-tune last body group"]
    settings = tmp_path / "recipe" / "settings.json"  # as 0.2 saved it, under its name of the variant
    settings.write_text(settings.read_text().replace('"lp_ft_top"', '"lp_ft"'))
    r = ftbook("finetune", shapes, "--out", tmp_path / "recipe", "--resume")
    assert r.returncode == 0 and "the saved run's lp_ft is now lp_ft_top" in r.stderr, r.stderr
    r = ftbook("finetune", shapes, "--method", "head", "--epochs", "1", *TINY, "--out", tmp_path / "alias")
    assert r.returncode == 0 and "head is now probe" in r.stderr
    one_line_error(ftbook("finetune", shapes, "--method", "magic", "--out", tmp_path / "x"), "invalid choice")
    one_line_error(ftbook("finetune", shapes, "--arch", "vgg99", "--out", tmp_path / "x"), "Unknown architecture")
    # argparse's errors are one line too; a size of 0 is refused, not taken as the default size
    one_line_error(ftbook("finetune", shapes, "--size", "0", "--out", tmp_path / "x"), "--size", "at least 1")
    assert not (tmp_path / "x" / "settings.json").exists()


def test_lr_find_picks_the_rate(shapes, tmp_path):
    r = ftbook("finetune", shapes, "--method", "probe", "--epochs", "2", "--lr", "find", *TINY,
               "--out", tmp_path / "lr")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "lr" / "metrics.json").read_text())
    assert m["settings"]["lr"] == "find" and 1e-7 < m["lr"] < 10
    assert f"learning rate {m['lr']:.2g}" in r.stdout
    one_line_error(ftbook("finetune", shapes, "--lr", "fast", "--out", tmp_path / "x"), "--lr")  # not a rate


def test_steps_set_the_epochs(shapes, tmp_path):
    r = ftbook("finetune", shapes, "--method", "fine_tune", "--steps", "9", *TINY, "--out", tmp_path / "steps")
    assert r.returncode == 0, r.stderr
    h = pd.read_csv(tmp_path / "steps" / "history.csv")
    assert h.stage.tolist() == ["frozen"] + ["unfrozen"] * 3  # 20 images in batches of 8: 3 steps an epoch


def test_precision_is_saved_and_used_to_rescore(shapes, tmp_path):
    "--precision: in settings.json and model.pth; rescoring the saved model at it gives the recorded loss."
    from ftbook.inference import load_model, model_outputs
    from ftbook.data import get_items, image_loader
    items = get_items(shapes)
    valid, losses = items[items.split == "valid"], {}
    for precision in ("bf16", "fp32"):
        out = tmp_path / precision
        r = ftbook("finetune", shapes, "--method", "probe", "--epochs", "2", "--precision", precision, *TINY,
                   "--out", out)
        assert r.returncode == 0, r.stderr
        assert json.loads((out / "settings.json").read_text())["precision"] == precision
        model, meta = load_model(out / "model.pth")
        assert meta["precision"] == precision
        dl = image_loader(valid, meta["size"], meta["stats"], meta["vocab"], cache_images=False)
        logits, y, _ = model_outputs(model, meta, dl)
        raw = logits * meta["temperature"]  # the logits before the temperature fitted after training
        losses[precision] = torch.nn.functional.cross_entropy(raw, y).item()
        assert losses[precision] == pytest.approx(pd.read_csv(out / "history.csv").valid_loss.min(), abs=1e-6)
    assert losses["bf16"] != losses["fp32"]
    assert ftbook("finetune", shapes, "--precision", "fp16", "--out", tmp_path / "x").returncode == 2


def test_any_timm_backbone_with_a_weights_file(shapes, tmp_path):
    one_line_error(ftbook("finetune", shapes, "--arch", "resnet10t", "--out", tmp_path / "x"), "--weights FILE")
    import timm
    torch.save(timm.create_model("resnet10t").state_dict(), tmp_path / "resnet10t.pth")
    r = ftbook("finetune", shapes, "--arch", "resnet10t", "--weights", tmp_path / "resnet10t.pth", "--method",
               "fine_tune", "--epochs", "1", "--bs", "8", "--out", tmp_path / "timm")
    assert r.returncode == 0, r.stderr
    # without --size: the backbone's view_size, from timm's config (1.3 x 176 px), recorded where it is used
    from ftbook.inference import load_model
    from ftbook.models import view_size
    assert view_size("resnet10t") == 230
    for record in ("settings.json", "metrics.json"):  # the settings as resolved: what the run used
        settings = json.loads((tmp_path / "timm" / record).read_text())
        assert settings.get("settings", settings)["size"] == 230
    assert load_model(tmp_path / "timm" / "model.pth")[1]["size"] == 230
    assert ftbook("predict", tmp_path / "timm" / "model.pth", shapes / "test").returncode == 0


def test_fastai_method(shapes, tmp_path):
    r = ftbook("finetune", shapes, "--method", "fastai", "--epochs", "1", *TINY, "--out", tmp_path / "fa")
    assert r.returncode == 0, r.stderr
    assert pd.read_csv(tmp_path / "fa" / "history.csv").stage.tolist() == ["frozen", "unfrozen"]
    assert torch.load(tmp_path / "fa" / "model.pth", weights_only=True)["precision"] == "fp32"  # fastai's
    assert ftbook("predict", tmp_path / "fa" / "model.pth", shapes / "test").returncode == 0


def test_study_and_sizes_write_resumable_results(shapes, tmp_path):
    args = ["--budgets", "1", "2", "--seeds", "2", "--size", "32", "--bs", "8", "--arch", "efficientnet_lite0",
            "--out", tmp_path / "study"]
    r = ftbook("study", shapes, *args)
    assert r.returncode == 0, r.stderr
    runs, curves = (pd.read_csv(tmp_path / "study" / f) for f in ("runs.csv", "curves.csv"))
    assert len(runs) == 2 * 2 and len(curves) == 2 * (2 + 3)  # seeds x budgets; their epochs
    assert "test_accuracy" in curves and "the interval" in r.stdout
    prov = json.loads((tmp_path / "study" / "provenance.json").read_text())
    assert prov["invocations"][0]["command"] == shlex.join(["ftbook", "study", str(shapes), *map(str, args)])
    assert prov["invocations"][0]["runs"] == 4
    again = ftbook("study", shapes, *args)  # everything is there: nothing retrained, the verdicts again
    assert again.returncode == 0 and "seed 0" not in again.stdout and "the interval" in again.stdout
    assert pd.read_csv(tmp_path / "study" / "runs.csv").equals(runs)
    r = ftbook("sizes", shapes, "--per-class", "2", "all", "--seeds", "2", "--cap-steps", "2", "--eval-steps", "1",
               "--patience", "1", "--steps", "2", "--size", "32", "--arch", "efficientnet_lite0",
               "--out", tmp_path / "sizes")
    assert r.returncode == 0, r.stderr
    assert "ftbook data-size: note: `ftbook sizes` is now `ftbook data-size`" in r.stderr  # release 0.1's name
    assert "note: --steps is no longer used" in r.stderr  # release 0.2's budget
    grid = pd.read_csv(tmp_path / "sizes" / "runs.csv")
    methods = {"probe", "fine_tune", "lp_ft", "fastai", "fastai_lr_find"}
    assert len(grid) == 2 * 2 * 5 and set(grid.method) == methods and set(grid.per_class) == {"2", "all"}
    assert grid.test_accuracy.between(0, 1).all() and "shapes, fastai_lr_find:" in r.stdout
    trials = pd.read_csv(tmp_path / "sizes" / "lr_selection.csv")  # the tuned methods' rates, at seed 0
    assert set(trials.method) == {"probe", "fine_tune", "lp_ft"} and len(trials) >= 2 * 3 * 4
    assert {"stopped_early", "best_stage", "valid_loss", "seconds", "lr"} <= set(grid.columns)
    one_line_error(ftbook("data-size", shapes, "--methods", "fine_tune", "--out", tmp_path / "x"), "probe")


def test_trust_study_with_nothing_to_measure_is_one_line_and_writes_nothing(shapes, tmp_path):
    "One dataset of two classes has neither far nor near unknowns: refused before --out is made."
    r = ftbook("trust-study", shapes, "--arch", "efficientnet_lite0", "--size", "32", "--out", tmp_path / "t")
    one_line_error(r, "nothing to measure")
    assert not (tmp_path / "t").exists()


def test_trust_study_measures_each_dataset_against_the_others(shapes, tmp_path):
    "Two datasets, the probe, one seed: one far run each (the other's test photos); no figure from one seed."
    other = make_synthetic(tmp_path / "other", classes=("red", "blue"), n_train=10, n_valid=6, n_test=4,
                           size=48, seed=1)
    r = ftbook("trust-study", shapes, other, "--methods", "probe", "--seeds", "1", "--draws", "0",
               "--arch", "efficientnet_lite0", "--size", "32", "--out", tmp_path / "t")
    assert r.returncode == 0, r.stderr
    runs = pd.read_csv(tmp_path / "t" / "runs.csv")
    assert sorted(zip(runs.dataset, runs.n_unknown)) == [("other", 3 * 2), ("shapes", 4 * 2)]
    assert not (tmp_path / "t" / "scores.png").exists() and "scores.png" not in r.stdout  # 5 seeds draw it


def test_phone_photos_are_read_upright(tmp_path):
    "JPEGs stored sideways with EXIF orientation 3, 6 and 8 train, predict and show as the same photos upright."
    from ftbook.data import EXIF_ORIENTATION, load_rgb
    shapes = make_synthetic(tmp_path / "upright", n_train=6, n_valid=3, size=48)
    turned = tmp_path / "phone"
    turns = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    for i, p in enumerate(sorted(shapes.rglob("*.png"))):  # lossless: the pixels can be compared exactly
        tag = list(turns)[i % 3]
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = tag
        dest = turned / p.relative_to(shapes)
        dest.parent.mkdir(parents=True, exist_ok=True)
        Image.open(p).transpose(turns[tag]).save(dest, exif=exif)
        assert np.array_equal(np.asarray(load_rgb(dest)), np.asarray(load_rgb(p)))
    report = ftbook("check", turned)
    n = len(list(turned.rglob("*.png")))
    assert f"{n} photos carry an EXIF rotation; ftbook reads them upright" in report.stdout
    r = ftbook("finetune", turned, "--method", "probe", "--epochs", "1", *TINY, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    upright_pngs = [p for p in sorted(shapes.rglob("*.png")) if "train" not in p.parts]
    a = predict_rows(tmp_path / "run" / "model.pth", upright_pngs)
    b = predict_rows(tmp_path / "run" / "model.pth", [turned / p.relative_to(shapes) for p in upright_pngs])
    assert [x[1:] for x in a] == [x[1:] for x in b]  # same labels and probabilities


def predict_rows(model, files):
    from ftbook.inference import predict
    return [(p, c, round(q, 5)) for p, c, q in predict(model, files)]


def messy_dataset(root: Path) -> Path:
    "Class folders with an unreadable file, a class of one image, and a photo over PIL's 89-megapixel warning."
    make_synthetic(root, n_train=8, n_valid=0, size=48, flat=True)
    (root / "circle" / "broken.jpg").write_text("not an image")
    (root / "triangle").mkdir()
    shutil.copy(root / "square" / "square_train000.jpg", root / "triangle" / "only.jpg")
    Image.new("L", (9500, 9500), 200).save(root / "square" / "huge.png")
    return root


def test_every_command_speaks_in_ftbook_lines(tmp_path):
    "Messy data provokes every note; each command's stderr holds ftbook's lines only, and the data is unchanged."
    data = messy_dataset(tmp_path / "messy")
    before = snapshot(data)
    r = ftbook_process("finetune", data, "--method", "probe", "--epochs", "2", *TINY, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    lines = only_ftbook_lines(r.stderr)
    assert any(f"skipped {data / 'circle' / 'broken.jpg'}: not an image" in line for line in lines), lines
    assert any("huge.png: very large image (9500x9500, 90 megapixels)" in line for line in lines), lines
    assert any("class 'triangle' has 1 training image and no validation image" in line for line in lines)
    assert r.stdout.index("data: classes layout") < r.stdout.index("epoch  stage")  # summary before training
    q = ftbook_process("finetune", data, "--method", "probe", "--epochs", "1", "--quiet", *TINY,
                       "--out", tmp_path / "q")
    assert q.returncode == 0 and only_ftbook_lines(q.stderr) and "skipped" in q.stderr  # --quiet keeps them
    model = tmp_path / "run" / "model.pth"
    for args in (["check", data], ["evaluate", model, data], ["predict", model, data],
                 ["study", data, "--budgets", "1", "1", "--seeds", "1", *TINY, "--out", tmp_path / "st"],
                 ["data-size", data, "--per-class", "1", "--seeds", "1", "--cap-steps", "1", "--methods", "probe",
                  "--arch", "efficientnet_lite0", "--size", "32", "--out", tmp_path / "sz"],
                 ["bench", data, *TINY, "--steps", "2"]):
        r = ftbook_process(*args)
        assert r.returncode in (0, 1), (args[0], r.stderr)  # check: 1, the triangle has no validation image
        only_ftbook_lines(r.stderr)
    assert snapshot(data) == before


def test_a_full_disk_loses_no_work(shapes, tmp_path):
    "A small filesystem fills up during a run: one line naming the file, the last checkpoint kept, resume works."
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = disk / "run"
        args = ["finetune", shapes, "--method", "fine_tune", "--epochs", "6", *TINY]
        p = ftbook_started(*args, "--out", out)
        for line in p.stdout:  # once epoch 2 is checkpointed and printed, the disk fills up
            if line.split()[:1] == ["2"]: break
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as f:
            try:
                while True: f.write(b"\0" * 2**20)
            except OSError: pass
        _, stderr = p.communicate(timeout=300)
        assert p.returncode == 1, stderr
        (line,) = [x for x in stderr.splitlines() if x.strip()]
        assert re.match(r"ftbook finetune: error: no space left on device while writing .*run/", line), line
        assert "the last complete checkpoint is kept" in line and "--resume" in line
        kept = torch.load(out / "checkpoints" / "last.pth", weights_only=True)["epoch"]
        assert kept >= 2 and not list(out.rglob(".*.tmp"))  # complete files only, no temporary leftovers
        filler.unlink()
        r = ftbook("finetune", shapes, "--out", out, "--resume")
        assert r.returncode == 0, r.stderr
        assert len(pd.read_csv(out / "history.csv")) == 1 + 6
    finally:
        subprocess.run(["umount", str(disk)])


def test_a_malicious_model_file_is_refused_and_runs_nothing(run, shapes, tmp_path):
    out, _ = run
    marker = tmp_path / "pwned"
    class Payload:
        def __reduce__(self): return (os.system, (f"touch {marker}",))
    evil = tmp_path / "model.pth"
    torch.save(dict(torch.load(out / "model.pth", weights_only=True), arch=Payload()), evil)
    for args in (["predict", evil, shapes / "test"], ["evaluate", evil, shapes]):
        one_line_error(ftbook(*args), "refused: it holds Python objects")
    resumed = tmp_path / "resume"
    shutil.copytree(out, resumed)
    ckpt = torch.load(resumed / "checkpoints" / "last.pth", weights_only=True)
    torch.save(dict(ckpt, history=Payload()), resumed / "checkpoints" / "last.pth")
    r = ftbook("finetune", shapes, "--out", resumed, "--resume")
    assert r.returncode == 1 and "refused: it holds Python objects" in only_ftbook_lines(r.stderr)[-1]
    assert not marker.exists()


def test_resume_names_the_flags_it_ignores(run, shapes, tmp_path):
    out, _ = run
    copy = tmp_path / "again"
    shutil.copytree(out, copy)
    r = ftbook("finetune", shapes, "--out", copy, "--resume", "--size", "64", "--epochs", "3")
    assert r.returncode == 0, r.stderr
    lines = only_ftbook_lines(r.stderr)
    assert "ftbook finetune: ignored: --size 64 (the run uses 32)" in lines
    assert not any("--epochs" in line for line in lines)  # the same as the run's: nothing to say


def test_ctrl_c_is_one_line_in_every_command(monkeypatch, capsys, shapes):
    from ftbook import cli
    def interrupt(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr("ftbook.check.check_dataset", interrupt)
    monkeypatch.setattr("ftbook.check.load_dataset", interrupt)
    monkeypatch.setattr("ftbook.inference.predict_table", interrupt)
    monkeypatch.setattr("ftbook.inference.evaluate_model", interrupt)
    for args in (["check", shapes], ["predict", "m.pth", shapes], ["evaluate", "m.pth", shapes],
                 ["bench", shapes]):
        assert cli.main([str(a) for a in args]) == 130
        assert capsys.readouterr().err == f"ftbook {args[0]}: interrupted\n"


def test_settings_are_checked_for_python_callers_too(shapes, tmp_path):
    from ftbook.core import RunSettings
    with pytest.raises(ValueError, match="size: 0 is not a whole number of at least 1"): RunSettings(size=0)
    with pytest.raises(ValueError, match="bs: -1 is not"): RunSettings(bs=-1)
    with pytest.raises(ValueError, match="steps: 0 is not"): RunSettings(steps=0)
