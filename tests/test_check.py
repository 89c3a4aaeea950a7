"""Bad input for `ftbook check`: one bad file of every kind, dataset-level errors, every layout's refusals, and the
data left untouched. (The checker's report on the real datasets is in nbs/01b_check.ipynb.)"""
import json
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from conftest import EXPECTED, UNREADABLE, build_broken, snapshot
from ftbook.check import Issue, check_dataset, format_report, load_dataset, make_synthetic, usable_items
from ftbook.data import DataError, get_items, torch_loaders, HALF_STATS


@pytest.fixture(scope="module")
def report(broken):
    return check_dataset(broken)


def issue_for(report, name: str) -> Issue:
    found = [i for i in report.issues if Path(i.path).name == name]
    assert len(found) == 1, (name, found)
    return found[0]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_problem_is_reported(report, broken, name):
    level, reason = EXPECTED[name]
    issue = issue_for(report, name)
    assert issue.level == level
    assert reason in issue.reason, issue.reason
    assert Path(issue.path).is_relative_to(broken)


def test_broken_report_is_usable_with_warnings(report):
    assert report.ok and report.errors == [] and report.layout == "folders"
    assert {Path(i.path).name for i in report.warnings} == set(EXPECTED)
    assert report.counts["skipped"] == len(UNREADABLE)
    text = format_report(report)
    assert str(report) == text
    for i in report.issues: assert f"{Path(i.path).relative_to(report.root)}: {i.reason}" in text
    assert text.splitlines()[-1].startswith("verdict: usable for training")
    d = json.loads(report.to_json())
    assert d == report.to_dict() and d["n_warnings"] == len(EXPECTED)


def test_dataset_level_errors(tmp_path):
    differ = make_synthetic(tmp_path / "differ", classes=("circle", "square", "triangle"), n_train=2, n_valid=1)
    shutil.rmtree(differ / "val" / "triangle")
    one = make_synthetic(tmp_path / "one", classes=("circle",), n_train=2, n_valid=1)
    test_only = make_synthetic(tmp_path / "test_only", n_train=2, n_valid=1, n_test=1)
    (test_only / "test" / "triangle").mkdir()
    shutil.copy(next((test_only / "test" / "circle").iterdir()), test_only / "test" / "triangle" / "t.jpg")
    for root, reason in [(differ, "only in training ['triangle']"), (one, "a classifier needs at least 2"),
                         (test_only, "test classes never seen in training: ['triangle']")]:
        r = check_dataset(root)
        assert not r.ok and any(reason in i.reason for i in r.errors), (reason, r.issues)
        assert "verdict: NOT usable" in format_report(r)


@pytest.mark.parametrize("make, reason", [
    (lambda d: d / "missing", "no such folder or file"),
    (lambda d: (d / "val" / "a").mkdir(parents=True) or d, "a validation or test folder but no train/"),
    (lambda d: (d / "x.txt").write_text("x") and d / "x.txt", "not a folder or a .csv file"),
    (lambda d: (d / "loose").mkdir() or (d / "loose" / "a.jpg").write_text("x") and d / "loose", "no class folders"),
    (lambda d: (d / "a.csv").write_text("file,class\n") and d / "a.csv", "a CSV needs path and label"),
    (lambda d: (d / "a.csv").write_text("path,label,split\nx.jpg,a,dev\n") and d / "a.csv", "split values ['dev']"),
])
def test_unreadable_layouts_are_one_error_listing_the_layouts(tmp_path, make, reason):
    path = make(tmp_path)
    r = check_dataset(path)
    assert not r.ok and len(r.errors) == 1 and reason in r.errors[0].reason, r.issues
    with pytest.raises(DataError, match="accepted layouts|split values"): get_items(path)
    assert r.layout == ""  # no dataset there: `ftbook check` exits 2 (tests/test_cli.py)


def test_ignored_files_and_two_validation_folders(tmp_path):
    root = make_synthetic(tmp_path / "d", n_train=2, n_valid=1)
    (root / "train" / "circle" / "notes.txt").write_text("x")
    (root / "train" / "loose.jpg").write_bytes((root / "train" / "circle" / "circle_train000.jpg").read_bytes())
    (root / "train" / "circle" / ".DS_Store").write_text("x")  # hidden files are ignored silently
    shutil.copytree(root / "val", root / "validation")
    r = check_dataset(root)
    assert r.ok
    assert "not an image extension (.txt): ignored" in issue_for(r, "notes.txt").reason
    assert "file outside a class folder" in issue_for(r, "loose.jpg").reason
    assert "validation/ ignored" in issue_for(r, "validation").reason
    assert not any(".DS_Store" in i.path for i in r.issues)
    assert r.counts["valid"] == {"circle": 1, "square": 1}


def test_csv_with_missing_files_and_a_single_image_class(tmp_path):
    root = make_synthetic(tmp_path / "d", n_train=3, n_valid=1, flat=True)
    rows = [dict(path=str(p.relative_to(tmp_path)), label=p.parent.name) for p in sorted(root.rglob("*.*"))]
    rows += [dict(path="d/circle/gone.jpg", label="circle"), dict(path="d/square/square_train000.jpg", label="odd")]
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    r = check_dataset(tmp_path / "labels.csv")
    assert r.layout == "csv" and "file not found: will be skipped" in issue_for(r, "gone.jpg").reason
    assert any("only in training ['odd']" in i.reason for i in r.errors)  # one image: nothing to validate it


def test_usable_items_records_what_it_skipped(broken):
    items = get_items(broken)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing through Python's warning machinery
        ok = usable_items(items)
    assert {Path(p).name for p, _ in ok.attrs["skipped"]} == UNREADABLE
    assert set(items.path) - set(ok.path) == {p for p in items.path if Path(p).name in UNREADABLE}
    assert list(ok.index) == list(range(len(ok)))
    assert ok.attrs["layout"] == "folders"


def test_nothing_is_modified(tmp_path):
    root = build_broken(tmp_path / "data")
    before = snapshot(root)
    check_dataset(root)
    items = load_dataset(root)
    for cache in (True, False):
        for dl in torch_loaders(items, 32, HALF_STATS, bs=8, cache_images=cache):
            for _ in dl: pass
    assert snapshot(root) == before
