"""Study bookkeeping on scripted histories: best epoch, early stopping, mean/std per epoch, selection rules."""
import numpy as np
import pandas as pd
import pytest

from ftbook.study import best_epoch, early_stop_epoch, epoch_stats, mean_std, selection


def scripted(valid, seed=0, variant="v"):
    n = len(valid)
    return pd.DataFrame(dict(epoch=range(1, n + 1), valid_loss=valid, train_loss=np.linspace(1, 0.1, n),
                             accuracy=[0.5 + 0.01 * i for i in range(n)], variant=variant, seed=seed))


def test_best_epoch_is_argmin_valid_loss_first_on_ties():
    assert best_epoch(scripted([0.9, 0.5, 0.5, 0.7])) == 2
    assert best_epoch(scripted([0.3, 0.5, 0.6])) == 1


@pytest.mark.parametrize("losses,patience,expected", [
    ([1.0, 0.8, 0.85, 0.9, 0.7], 2, (4, 2)),       # two epochs without improvement -> stop at 4, best 2
    ([1.0, 0.8, 0.85, 0.9, 0.7], 3, (5, 5)),       # never triggers: full run, best is the last
    ([1.0, 1.1, 1.2], 1, (2, 1)),
    ([0.5, 0.4, 0.3, 0.2], 1, (4, 4)),
])
def test_early_stopping_on_scripted_losses(losses, patience, expected):
    assert early_stop_epoch(losses, patience) == expected


def test_epoch_stats_mean_std_and_gap():
    study = pd.concat([scripted([0.9, 0.6, 0.7], seed=0), scripted([1.1, 0.8, 0.9], seed=1)])
    st = epoch_stats(study)
    assert st.valid_loss_mean.tolist() == pytest.approx([1.0, 0.7, 0.8])
    assert st.valid_loss_std.tolist() == pytest.approx([np.std([0.9, 1.1], ddof=1)] * 3)
    assert st.gap_mean.tolist() == pytest.approx(list(np.array([1.0, 0.7, 0.8]) - np.linspace(1, 0.1, 3)))


def test_selection_rules():
    study = pd.concat([scripted([0.9, 0.6, 0.7, 0.8, 0.5], seed=0), scripted([0.9, 0.6, 0.7, 0.8, 0.5], seed=1, variant="w")])
    sel = selection(study, patience=2)
    assert sel.best_epoch.tolist() == [5, 5]
    assert sel.early_stop_epoch.tolist() == [4, 4]
    assert sel.early_stop_accuracy.tolist() == pytest.approx([0.51, 0.51])   # restored best before the stop: epoch 2
    assert sel.final_accuracy.tolist() == pytest.approx([0.54, 0.54])
    table = mean_std(sel[["variant", "seed", "final_accuracy"]])
    assert table.loc["v", "final_accuracy"] == "0.540 ± 0.000"
