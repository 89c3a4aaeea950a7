"""What the fastai chapter cannot show: a learner without the history callback, and where fastai writes files.
(The schedule, the losses and the frozen parameters are checked in nbs/03_fastai_fine_tune.ipynb.)"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest


from ftbook.check import make_synthetic
from ftbook.data import HALF_STATS, get_items
from ftbook.fastai_tune import EpochRecorder, ScheduleRecorder, fastai_dls, fastai_history, fastai_learner, run_fastai

ARCH, SIZE, BS, EPOCHS = "efficientnet_lite0", 32, 8, 2


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    return get_items(make_synthetic(tmp_path_factory.mktemp("synthetic"), n_train=8, n_valid=4, size=48))


def test_history_needs_epoch_stats(items):
    learn = fastai_learner(fastai_dls(items, SIZE, HALF_STATS, bs=BS), ARCH, pretrained=False)
    with pytest.raises(ValueError, match="EpochRecorder"):
        fastai_history(learn)
    learn = fastai_learner(fastai_dls(items, SIZE, HALF_STATS, bs=BS), ARCH, pretrained=False,
                           cbs=[ScheduleRecorder(), EpochRecorder()])
    assert len(fastai_history(learn)) == 0


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
