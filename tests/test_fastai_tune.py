"""ftbook.fastai_tune on a tiny synthetic dataset with random weights: fast, offline, CPU."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from ftbook.core import HISTORY_COLUMNS
from ftbook.data import HALF_STATS, IMAGENET_STATS, fastai_dls, get_items, make_synthetic
from ftbook.fastai_tune import (EpochStats, ScheduleRecorder, ensure_normalize, fastai_history, fastai_learner,
                                fastai_param_table, fine_tune_schedule, normalize_tfms, run_fastai, schedules_match)
from ftbook.models import BN_TYPES, create_model, freeze_to, layer_groups, param_table

ARCH, SIZE, BS, EPOCHS = "efficientnet_lite0", 32, 8, 2


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    return get_items(make_synthetic(tmp_path_factory.mktemp("synthetic"), n_train=8, n_valid=4, size=48))


@pytest.fixture(scope="module")
def runs(items):
    "The same seeded run twice: fastai's `fine_tune` and `fine_tune_by_hand`."
    kw = dict(arch=ARCH, epochs=EPOCHS, size=SIZE, bs=BS, seed=0, pretrained=False)
    return run_fastai(items, **kw), run_fastai(items, by_hand=True, **kw)


def test_schedule_matches_fastai(runs):
    (_, a), (_, b) = runs
    sa, sb = a.schedule_recorder.frame(), b.schedule_recorder.frame()
    n_iter, n_groups = len(a.dls.train), len(a.opt.param_lists)
    assert n_groups == 2
    assert len(sa) == (1 + EPOCHS) * n_iter * n_groups
    assert sa.equals(sb)  # lr and mom of every group at every iteration, bit for bit
    formula = fine_tune_schedule(n_iter, EPOCHS, n_groups)
    assert schedules_match(sa, formula, rtol=1e-5)
    assert not schedules_match(sa, formula.assign(mom=formula.mom * 1.01), rtol=1e-5)


def test_losses_match_with_fixed_seed(runs):
    (ha, a), (hb, b) = runs
    assert len(a.schedule_recorder.losses) == len(b.schedule_recorder.losses) > 0
    if a.dls.device.type == "cpu":
        assert a.schedule_recorder.losses == b.schedule_recorder.losses
    else:
        np.testing.assert_allclose(a.schedule_recorder.losses, b.schedule_recorder.losses, rtol=1e-3)
    cols = ["train_loss", "valid_loss", "accuracy"]
    np.testing.assert_allclose(ha[cols].values, hb[cols].values, rtol=0 if a.dls.device.type == "cpu" else 1e-3)


def test_history_format(runs, items):
    (hist, learn), _ = runs
    assert list(hist.columns[:len(HISTORY_COLUMNS)]) == HISTORY_COLUMNS
    assert hist.epoch.tolist() == list(range(1, EPOCHS + 2))
    assert hist.phase.tolist() == ["frozen"] + ["unfrozen"] * EPOCHS
    assert hist[HISTORY_COLUMNS].notna().all().all()
    assert hist.accuracy.between(0, 1).all() and (hist.seconds > 0).all() and (hist.images_per_second > 0).all()
    # lr: the head's peak per epoch, from the schedule
    sched = learn.schedule_recorder.frame()
    head = sched[sched.group == sched.group.max()].lr.to_numpy().reshape(1 + EPOCHS, -1).max(1)
    np.testing.assert_allclose(hist.lr, head)
    # the last epoch's accuracy and valid loss are fastai's own
    np.testing.assert_allclose(hist.iloc[-1][["valid_loss", "accuracy"]].astype(float), learn.final_record[1:3], rtol=1e-6)
    assert fastai_history(learn).equals(hist)


def test_frozen_trainable_matches_models(items):
    learn = fastai_learner(fastai_dls(items, SIZE, HALF_STATS, bs=BS), ARCH, pretrained=False)
    learn.freeze()
    table = fastai_param_table(learn)
    n_bn_body = sum(p.numel() for m in learn.model[0].modules() if isinstance(m, BN_TYPES) for p in m.parameters())
    n_head = sum(p.numel() for p in learn.model[1].parameters())
    assert table.iloc[0].trainable == n_bn_body          # body: only BatchNorm trains (train_bn=True)
    assert table.iloc[1].trainable == n_head             # head: all of it
    ours = create_model(ARCH, n_out=2, pretrained=False, head="fastai")
    groups = layer_groups(ours, ARCH)
    freeze_to(groups, -1, train_bn=True)
    mine = param_table(groups)
    assert table.loc["all", "params"] == mine.loc["all", "params"]
    assert table.loc["all", "trainable"] == mine.loc["all", "trainable"] == n_bn_body + n_head


def test_train_bn_false_freezes_body(items):
    learn = fastai_learner(fastai_dls(items, SIZE, HALF_STATS, bs=BS), ARCH, pretrained=False, train_bn=False)
    learn.freeze()
    assert fastai_param_table(learn).loc["all", "trainable"] == sum(p.numel() for p in learn.model[1].parameters())


def test_normalisation_once_and_the_backbones(items):
    dls = fastai_dls(items, SIZE, HALF_STATS, bs=BS)
    fastai_learner(dls, ARCH, pretrained=False)
    assert len(normalize_tfms(dls)) == 1
    with pytest.raises(ValueError, match="backbone expects"):
        fastai_learner(fastai_dls(items, SIZE, IMAGENET_STATS, bs=BS), ARCH, pretrained=False)
    dls.after_batch.fs = dls.after_batch.fs.filter(lambda t: t not in normalize_tfms(dls))
    ensure_normalize(dls, HALF_STATS)  # missing: added with the backbone's stats
    (norm,) = normalize_tfms(dls)
    assert torch.allclose(norm.mean.flatten().cpu(), torch.tensor(HALF_STATS[0]))


def test_history_needs_epoch_stats(items):
    learn = fastai_learner(fastai_dls(items, SIZE, HALF_STATS, bs=BS), ARCH, pretrained=False)
    with pytest.raises(ValueError, match="EpochStats"):
        fastai_history(learn)
    learn = fastai_learner(fastai_dls(items, SIZE, HALF_STATS, bs=BS), ARCH, pretrained=False,
                           cbs=[ScheduleRecorder(), EpochStats()])
    assert len(fastai_history(learn)) == 0


def test_resnet_gets_three_groups(items):
    learn = fastai_learner(fastai_dls(items, SIZE, IMAGENET_STATS, bs=BS), "resnet18", pretrained=False)
    learn.create_opt()
    assert len(learn.opt.param_lists) == 3


def test_fit_callbacks_and_path_reach_both_fits(items, tmp_path, monkeypatch):
    "`cbs` go to both fits of `fine_tune` and of the rebuild alike; SaveModelCallback writes under `path` only."
    from fastai.callback.tracker import SaveModelCallback
    monkeypatch.chdir(tmp_path)
    runs = {}
    for by_hand in (False, True):
        out = tmp_path / f"by_hand_{by_hand}"
        saver = SaveModelCallback(monitor="valid_loss", fname="best", reset_on_fit=False)
        hist, learn = run_fastai(items, ARCH, epochs=EPOCHS, size=SIZE, bs=BS, seed=0, pretrained=False,
                                 by_hand=by_hand, cbs=[saver], path=out)
        assert (out / "models" / "best.pth").exists()
        assert not any(type(cb) is SaveModelCallback for cb in learn.cbs)  # fit-time callbacks are removed afterwards
        with learn.no_bar(), learn.no_logging():
            assert learn.validate()[0] == pytest.approx(hist.valid_loss.min(), abs=1e-5)  # the best weights were reloaded
        runs[by_hand] = hist
    assert not (tmp_path / "models").exists()
    np.testing.assert_array_equal(runs[False].valid_loss.values, runs[True].valid_loss.values)
