"""On a CUDA GPU (skipped without one: CI has none; run it where a GPU is lent): the paths that cache the frozen body's
features on the device, with their labels, train and score there: a probe, LP-FT, and the learning-rate finder."""
import json

import pandas as pd
import pytest
import torch

from ftbook.check import make_synthetic
from ftbook.cli import main

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
TINY = ["--arch", "efficientnet_lite0", "--size", "32", "--bs", "8"]


def test_cached_features_train_and_score_on_the_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("FTBOOK_DEVICE", "cuda")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    shapes = make_synthetic(tmp_path / "shapes", n_train=8, n_valid=4, n_test=3, size=48)
    assert main(["data-size", shapes, "--per-class", "4", "--seeds", "1", "--cap-steps", "4",
                 "--methods", "probe", "fine_tune", "lp_ft", *TINY[:4], "--out", tmp_path / "sizes"]) == 0
    grid = pd.read_csv(tmp_path / "sizes" / "runs.csv")
    assert set(grid.method) == {"probe", "fine_tune", "lp_ft"} and grid.test_accuracy.between(0, 1).all()
    prov = json.loads((tmp_path / "sizes" / "provenance.json").read_text())
    assert prov["invocations"][0]["device"] == torch.cuda.get_device_name()
    assert main(["finetune", shapes, "--method", "probe", "--epochs", "1", "--lr", "find", *TINY,
                 "--out", tmp_path / "lr"]) == 0
    assert 1e-7 < json.loads((tmp_path / "lr" / "metrics.json").read_text())["lr"] < 10
