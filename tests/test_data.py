"""Tests for ftbook.data: layout, checks of broken datasets, decoding of odd files, loaders and determinism."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import ast
import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import ftbook.data
from ftbook.core import seed_everything
from ftbook.data import (HALF_STATS, IMAGENET_STATS, IMG_EXTS, CheckReport, DataError, ImageDataset, Issue,
                         check_dataset, check_main, class_counts, format_report, get_items, load_rgb,
                         make_synthetic, torch_loaders, train_tfms, usable_items, valid_tfms)

# file name -> (level, substring of the reason); every bad case of the broken dataset below
EXPECTED = {
    "zero.jpg": ("warning", "empty file (0 bytes): will be skipped"),
    "truncated.jpg": ("warning", "truncated"),
    "text.jpg": ("warning", "not an image"),
    "gif_as.jpg": ("warning", "GIF content with .jpg extension"),
    "anim.gif": ("warning", "animated GIF (3 frames), first frame used"),
    "mode_l.png": ("warning", "mode L converted to RGB"),
    "mode_p.png": ("warning", "mode P converted to RGB"),
    "mode_cmyk.jpg": ("warning", "mode CMYK converted to RGB"),
    "mode_rgba.png": ("warning", "mode RGBA converted to RGB"),
    "mode_i16.png": ("warning", "mode I;16 converted to RGB"),
    "tiny.png": ("warning", "tiny image 8x8"),
    "dup.jpg": ("warning", "same content as train/circle/circle_002.jpg"),
    "empty": ("warning", "empty class folder"),
}
UNREADABLE = {"zero.jpg", "truncated.jpg", "text.jpg"}


def build_broken(root: Path) -> Path:
    "Synthetic circles/squares plus one file (or folder) for every problem `check_dataset` knows."
    make_synthetic(root, n_train=6, n_valid=3, size=48)
    tr, va = root / "train" / "circle", root / "val" / "square"
    (tr / "zero.jpg").touch()
    good = (tr / "circle_000.jpg").read_bytes()
    (tr / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tr / "text.jpg").write_text("this is not an image\n")
    Image.new("RGB", (40, 40), "red").save(tr / "gif_as.jpg", format="GIF")
    frames = [Image.new("RGB", (40, 40), c) for c in ("red", "green", "blue")]
    frames[0].save(tr / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("L", (40, 40), 128).save(tr / "mode_l.png")
    Image.new("RGB", (40, 40), (0, 128, 0)).convert("P", palette=Image.Palette.ADAPTIVE).save(tr / "mode_p.png")
    Image.new("CMYK", (40, 40), (0, 90, 90, 0)).save(tr / "mode_cmyk.jpg")
    Image.new("RGBA", (40, 40), (255, 0, 0, 0)).save(tr / "mode_rgba.png")
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(tr / "mode_i16.png")
    Image.new("RGB", (8, 8), "blue").save(va / "tiny.png")
    shutil.copy(tr / "circle_002.jpg", root / "val" / "circle" / "dup.jpg")
    (root / "train" / "empty").mkdir()
    return root


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> Path:
    return build_broken(tmp_path_factory.mktemp("broken") / "data")


@pytest.fixture(scope="module")
def report(broken) -> CheckReport:
    return check_dataset(broken)


def snapshot(root: Path) -> dict:
    "Relative path -> sha256 for every file, and every folder (None), under `root`."
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


def issue_for(report: CheckReport, name: str) -> Issue:
    found = [i for i in report.issues if Path(i.path).name == name]
    assert len(found) == 1, (name, found)
    return found[0]


# ---------------------------------------------------------------- layout

def test_fixture_has_the_modes_it_claims(broken):
    tr = broken / "train" / "circle"
    for name, mode in [("mode_l.png", "L"), ("mode_p.png", "P"), ("mode_cmyk.jpg", "CMYK"),
                       ("mode_rgba.png", "RGBA"), ("mode_i16.png", "I;16"), ("anim.gif", "P")]:
        with Image.open(tr / name) as im: assert im.mode == mode, name
    with Image.open(tr / "gif_as.jpg") as im: assert im.format == "GIF"


def test_get_items(broken):
    items = get_items(broken)
    assert list(items.columns) == ["path", "label", "split", "is_valid"]
    assert set(items.split) == {"train", "valid"}
    assert (items.is_valid == (items.split == "valid")).all() and items.is_valid.dtype == bool
    assert items.equals(items.sort_values(["split", "path"], ignore_index=True))
    assert all(Path(p).suffix.lower() in IMG_EXTS for p in items.path)
    assert set(items.label) == {"circle", "square"}  # the empty class folder has no rows
    assert "text.jpg" in {Path(p).name for p in items.path}  # listing does not decode
    counts = class_counts(items)
    assert list(counts.columns) == ["train", "valid"] and counts.index.name == "label"
    assert counts.loc["square"].tolist() == [6, 4]  # 3 + tiny.png in val


def test_get_items_accepts_valid_and_rejects_missing(tmp_path):
    root = make_synthetic(tmp_path / "d", n_train=2, n_valid=1)
    (root / "val").rename(root / "valid")
    assert get_items(root).is_valid.sum() == 2
    shutil.rmtree(root / "valid")
    with pytest.raises(DataError, match="no val/ or valid/ folder"): get_items(root)
    with pytest.raises(DataError, match="does not exist"): get_items(tmp_path / "nope")


def test_make_synthetic_is_deterministic(tmp_path):
    a, b = make_synthetic(tmp_path / "a", seed=3), make_synthetic(tmp_path / "b", seed=3)
    assert snapshot(a) == snapshot(b)
    assert snapshot(a) != snapshot(make_synthetic(tmp_path / "c", seed=4))
    assert len(get_items(a)) == 2 * (8 + 4)


# ---------------------------------------------------------------- checks

@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_problem_is_reported(report, broken, name):
    level, reason = EXPECTED[name]
    issue = issue_for(report, name)
    assert issue.level == level
    assert reason in issue.reason, issue.reason
    assert Path(issue.path).is_relative_to(broken)


def test_broken_report_is_usable_with_warnings(report):
    assert report.ok and report.errors == []
    assert {Path(i.path).name for i in report.warnings} == set(EXPECTED)
    assert report.counts["skipped"] == len(UNREADABLE)
    assert report.counts["train"]["empty"] == 0
    text = format_report(report)
    assert str(report) == text
    for i in report.issues: assert f"{Path(i.path).relative_to(report.root)}: {i.reason}" in text
    assert text.splitlines()[-1].startswith("verdict: usable for training")


def test_report_json(report):
    d = json.loads(report.to_json())
    assert d == report.to_dict()
    assert d["ok"] is True and d["n_errors"] == 0 and d["n_warnings"] == len(EXPECTED)
    assert {"path", "level", "reason"} == set(d["issues"][0])


def test_dataset_level_errors(tmp_path):
    differ = make_synthetic(tmp_path / "differ", classes=("circle", "square", "triangle"), n_train=2, n_valid=1)
    shutil.rmtree(differ / "val" / "triangle")
    one = make_synthetic(tmp_path / "one", classes=("circle",), n_train=2, n_valid=1)
    noval = make_synthetic(tmp_path / "noval", n_train=2, n_valid=1)
    shutil.rmtree(noval / "val")
    for root, where, reason in [(differ, "val", "classes differ"), (differ, "val", "only in train ['triangle']"),
                                (one, "train", "a classifier needs at least 2"),
                                (noval, "val", "missing folder: no val/ or valid/")]:
        r = check_dataset(root)
        assert not r.ok
        assert any(i.level == "error" and Path(i.path) == root / where and reason in i.reason for i in r.errors), \
            (reason, r.issues)
        assert "verdict: NOT usable" in format_report(r)


def test_empty_val_class_is_an_error(tmp_path):
    root = make_synthetic(tmp_path / "d", n_train=2, n_valid=1)
    for f in (root / "val" / "square").iterdir(): f.unlink()
    r = check_dataset(root)
    assert not r.ok and "only in train ['square']" in r.errors[0].reason
    assert "empty class folder" in issue_for(r, "square").reason


def test_ignored_files_and_both_valid_folders(tmp_path):
    root = make_synthetic(tmp_path / "d", n_train=2, n_valid=1)
    (root / "train" / "circle" / "notes.txt").write_text("x")
    (root / "train" / "loose.jpg").write_bytes((root / "train" / "circle" / "circle_000.jpg").read_bytes())
    (root / "train" / "circle" / ".DS_Store").write_text("x")  # hidden files are ignored silently
    shutil.copytree(root / "val", root / "valid")
    r = check_dataset(root)
    assert r.ok
    assert "not an image extension (.txt): ignored" in issue_for(r, "notes.txt").reason
    assert "file outside a class folder" in issue_for(r, "loose.jpg").reason
    assert "valid/ ignored" in issue_for(r, "valid").reason
    assert not any(".DS_Store" in i.path for i in r.issues)
    assert r.counts["valid"] == {"circle": 1, "square": 1}


def test_check_main_exit_codes(broken, tmp_path, capsys):
    assert check_main(broken) == 0
    assert "verdict: usable" in capsys.readouterr().out
    one = make_synthetic(tmp_path / "one", classes=("circle",), n_train=2, n_valid=1)
    assert check_main(one) == 1
    assert "verdict: NOT usable" in capsys.readouterr().out
    assert check_main(one, as_json=True) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["ok"] is False and d["n_errors"] == 1
    assert check_main(tmp_path / "missing") == 2
    assert "no such folder" in capsys.readouterr().out
    assert check_main(tmp_path / "missing", as_json=True) == 2
    assert json.loads(capsys.readouterr().out)["ok"] is False
    assert check_main(broken, as_json=True) == 0
    assert json.loads(capsys.readouterr().out)["n_warnings"] == len(EXPECTED)


# ---------------------------------------------------------------- decoding

def test_usable_items_skips_unreadable_with_one_warning(broken):
    items = get_items(broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok = usable_items(items)
    assert len(caught) == 1
    msg = str(caught[0].message)
    for name in UNREADABLE: assert name in msg
    assert "truncated" in msg and "empty file" in msg and "not an image" in msg
    assert set(items.path) - set(ok.path) == {p for p in items.path if Path(p).name in UNREADABLE}
    assert list(ok.index) == list(range(len(ok)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert usable_items(ok).equals(ok)
    assert caught == []


@pytest.mark.parametrize("name,pixel", [("mode_l.png", (128, 128, 128)), ("mode_p.png", (0, 128, 0)),
                                        ("mode_cmyk.jpg", None), ("mode_rgba.png", (255, 255, 255)),
                                        ("mode_i16.png", (255, 255, 255)), ("anim.gif", (255, 0, 0)),
                                        ("gif_as.jpg", (255, 0, 0)), ("tiny.png", (0, 0, 255))])
def test_load_rgb_odd_modes(broken, name, pixel):
    path = next(broken.rglob(name))
    im = load_rgb(path)
    assert isinstance(im, Image.Image) and im.mode == "RGB"
    if pixel is not None: assert im.getpixel((3, 3)) == pixel


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_load_rgb_unreadable(broken, name):
    with pytest.raises(DataError, match=name) as e: load_rgb(broken / "train" / "circle" / name)
    assert e.value.reason and e.value.path.endswith(name)


# ---------------------------------------------------------------- loaders

def test_torch_loaders_shapes_and_labels(broken):
    items = get_items(broken)
    items = items[~items.path.map(lambda p: Path(p).name in UNREADABLE)]  # what usable_items keeps
    train_dl, valid_dl = torch_loaders(items, 32, HALF_STATS, bs=4)
    assert train_dl.dataset.vocab == ["circle", "square"]
    xb, yb = next(iter(train_dl))
    assert xb.shape == (4, 3, 32, 32) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    assert -1.0 - 1e-6 <= xb.min() and xb.max() <= 1.0 + 1e-6  # HALF_STATS maps [0, 1] to [-1, 1]
    ys = torch.cat([y for _, y in valid_dl])
    valid = items[items.is_valid]
    assert ys.tolist() == [train_dl.dataset.vocab.index(c) for c in valid.label]  # not shuffled, in order
    assert sum(len(y) for _, y in train_dl) == (~items.is_valid).sum()  # drop_last False


def test_same_seed_same_first_batch(tmp_path):
    items = get_items(make_synthetic(tmp_path / "d"))
    def first(seed, **kw):
        seed_everything(seed)
        return next(iter(torch_loaders(items, 32, IMAGENET_STATS, bs=8, seed=seed, **kw)[0]))
    for cache in (True, False):
        a, b, c = first(0, cache=cache), first(0, cache=cache), first(1, cache=cache)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert not torch.equal(a[0], c[0])


def test_cache_matches_plain_for_validation(tmp_path):
    items = get_items(make_synthetic(tmp_path / "d", n_train=2, n_valid=2))
    for augment in (True, False):
        cached, plain = (torch_loaders(items, 40, IMAGENET_STATS, augment=augment, cache=c) for c in (True, False))
        for i in range(4): assert torch.equal(cached[1].dataset[i][0], plain[1].dataset[i][0])
    dl = torch_loaders(items, 40, IMAGENET_STATS, augment=False)[0]  # no augmentation: deterministic train
    assert torch.equal(dl.dataset[0][0], dl.dataset[0][0])


def test_transforms():
    img = Image.new("RGB", (90, 60), (255, 0, 0))
    v = valid_tfms(32, HALF_STATS)(img)
    assert v.shape == (3, 32, 32) and torch.allclose(v[0], torch.ones(32, 32))
    assert torch.equal(train_tfms(32, HALF_STATS, augment=False)(img), v)
    assert train_tfms(32, HALF_STATS)(img).shape == (3, 32, 32)


def test_dataset_rejects_unknown_labels():
    items = pd.DataFrame(dict(path=["a.jpg"], label=["cat"], split=["train"], is_valid=[False]))
    with pytest.raises(DataError, match="not in the vocab"): ImageDataset(items, vocab=["ant", "bee"])
    with pytest.raises(DataError, match="both splits are needed"): torch_loaders(items, 32, HALF_STATS)


@pytest.mark.filterwarnings("ignore:.*torch.jit.script:FutureWarning")  # fastai's import on torch 2.14
def test_fastai_dls_same_data_as_torch(tmp_path):
    pytest.importorskip("fastai")
    from ftbook.data import fastai_dls
    items = get_items(make_synthetic(tmp_path / "d", n_train=5, n_valid=3, size=48))
    train_dl, valid_dl = torch_loaders(items, 32, HALF_STATS, bs=4)
    dls = fastai_dls(items, 32, HALF_STATS, bs=4)
    assert list(dls.vocab) == train_dl.dataset.vocab
    assert (len(dls.train_ds), len(dls.valid_ds)) == (len(train_dl.dataset), len(valid_dl.dataset))
    assert list(dls.valid_ds.items.path) == valid_dl.dataset.paths
    assert not dls.train.drop_last
    xb, yb = dls.one_batch()
    assert tuple(xb.shape) == (4, 3, 32, 32)
    xv = dls.valid.one_batch()[0]
    assert xv.min() >= -1 - 1e-4 and xv.max() <= 1 + 1e-4  # normalised with HALF_STATS
    seed_everything(0); a = fastai_dls(items, 32, HALF_STATS, bs=4, seed=1).one_batch()
    seed_everything(0); b = fastai_dls(items, 32, HALF_STATS, bs=4, seed=1).one_batch()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ---------------------------------------------------------------- safety

def test_nothing_is_modified(tmp_path):
    root = build_broken(tmp_path / "data")
    before = snapshot(root)
    check_dataset(root)
    check_main(root, as_json=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        items = usable_items(get_items(root))
    for cache in (True, False):
        for dl in torch_loaders(items, 32, HALF_STATS, bs=8, cache=cache):
            for _ in dl: pass
    assert snapshot(root) == before


def test_module_does_not_import_fastai_at_top_level():
    tree = ast.parse(Path(ftbook.data.__file__).read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names] + \
            [n.module for n in top if isinstance(n, ast.ImportFrom)]
    assert not any(m and m.split(".")[0] == "fastai" for m in names), names
