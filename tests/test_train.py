"""The hand-written loop: determinism, freezing, per-stage LRs, caching, resume, NaN guard, early stopping."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import math

import pandas as pd
import pytest
import torch

from ftbook.data import get_items, make_synthetic, torch_loaders
from ftbook.models import create_model, get_backbone, layer_groups
from ftbook.train import (EarlyStopping, Stage, TrainingDiverged, fit, make_optimizer, plan_fastai, plan_gradual,
                          plan_head, schedule_at, set_hypers)
from ftbook.core import HISTORY_COLUMNS, seed_everything

ARCH, CPU = "efficientnet_lite0", torch.device("cpu")
STABLE = ["epoch", "phase", "train_loss", "valid_loss", "accuracy", "lr"]


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    return get_items(make_synthetic(tmp_path_factory.mktemp("syn") / "shapes", n_train=12, n_valid=6, size=40))


def setup(items, augment=True, seed=0, arch=ARCH):
    seed_everything(seed)
    model = create_model(arch, 2, pretrained=False)
    dls = torch_loaders(items, 32, get_backbone(arch).stats, bs=6, augment=augment, seed=seed)
    return model, layer_groups(model, arch), dls


def test_same_seed_same_history(items):
    h1 = fit(*setup(items), plan_fastai(1), seed=0, device=CPU)
    h2 = fit(*setup(items), plan_fastai(1), seed=0, device=CPU)
    assert list(h1.columns[:len(HISTORY_COLUMNS)]) == HISTORY_COLUMNS
    assert h1.phase.tolist() == ["frozen", "unfrozen"] and h1.epoch.tolist() == [1, 2]
    pd.testing.assert_frame_equal(h1[STABLE], h2[STABLE])


def test_head_stage_leaves_body_untouched_for_a_whole_epoch(items):
    model, groups, dls = setup(items)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, groups, dls, plan_head(2), train_bn=False, cache=False, device=CPU)
    after = model.state_dict()
    body = [k for k in before if k.startswith("body.")]
    assert all(torch.equal(before[k], after[k]) for k in body)  # weights and BN running stats
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("head."))


def test_lrs_and_trainable_groups_per_stage(items):
    model, groups, dls = setup(items)
    plan = plan_gradual(2, len(groups), lr=1e-3)
    opt = make_optimizer(groups)
    for stage, n_frozen in zip(plan, [4, 3, 0]):
        assert stage.n_frozen == n_frozen
        lrs = stage.lrs(len(groups))
        set_hypers(opt, stage, lrs, stage.pct_start)  # at the peak of the one-cycle
        assert [pg["lr"] for pg in opt.param_groups] == pytest.approx(lrs)
    assert plan[-1].lrs(5) == pytest.approx([1e-3 / 2.6**k for k in (4, 3, 2, 1, 0)])
    # every parameter is in exactly one optimiser group
    ids = [id(p) for pg in opt.param_groups for p in pg["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


def test_one_cycle_endpoints():
    st = Stage(1, 0, 1.0, pct_start=0.25, div=25, div_final=1e5)
    assert schedule_at(st, 1.0, 0.0) == pytest.approx((1 / 25, 0.95))
    assert schedule_at(st, 1.0, 0.25) == pytest.approx((1.0, 0.85))
    assert schedule_at(st, 1.0, 1.0) == pytest.approx((1e-5, 0.95))


def test_cached_features_match_recomputing(items):
    hc = fit(*setup(items, augment=False), plan_head(2), train_bn=False, cache=True, seed=0, device=CPU)
    hr = fit(*setup(items, augment=False), plan_head(2), train_bn=False, cache=False, seed=0, device=CPU)
    assert hc.cached.all() and not hr.cached.any()
    assert hc.valid_loss.values == pytest.approx(hr.valid_loss.values, abs=1e-4)
    # with augmentation or fastai's train_bn, features change every epoch: no caching
    assert not fit(*setup(items, augment=True), plan_head(1), train_bn=False, device=CPU).cached.any()
    assert not fit(*setup(items, augment=False), plan_head(1), train_bn=True, device=CPU).cached.any()


def test_resume_continues_the_history_exactly(items, tmp_path):
    full = fit(*setup(items), plan_fastai(2), seed=0, device=CPU)
    fit(*setup(items), plan_fastai(2)[:1], seed=0, device=CPU, ckpt_dir=tmp_path)
    assert torch.load(tmp_path / "last.pth", weights_only=False)["epoch"] == 1
    resumed = fit(*setup(items, seed=5), plan_fastai(2), seed=0, device=CPU, ckpt_dir=tmp_path, resume=True)
    pd.testing.assert_frame_equal(full[STABLE], resumed[STABLE])
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_nan_guard_stops_and_keeps_best(items, tmp_path):
    plan = [Stage(1, 0, 1e-3, schedule="flat", name="ok"), Stage(2, 0, 1e15, schedule="flat", name="boom")]
    with pytest.raises(TrainingDiverged, match="loss became .* in epoch .*boom"):
        fit(*setup(items), plan, opt="sgd", device=CPU, ckpt_dir=tmp_path)
    best = torch.load(tmp_path / "best.pth", weights_only=False)
    assert best["epoch"] == 1 and math.isfinite(best["valid_loss"])


def test_early_stopping_and_restore_best(items):
    es = EarlyStopping(patience=2)
    assert [es.step(v) for v in [1.0, 0.9, 0.95, 0.91, 0.5]] == [False, False, False, True, False]
    model, groups, dls = setup(items)
    h = fit(model, groups, dls, [Stage(6, 0, 3e-2, schedule="flat")], seed=0, device=CPU,
            early_stopping=EarlyStopping(patience=1), restore_best=True)
    assert len(h) <= 6
    from ftbook.train import evaluate
    assert evaluate(model, dls[1], CPU)[0] == pytest.approx(h.valid_loss.min(), abs=1e-5)
