"""Data-parallel training under torchrun, on CPU with gloo and 2 processes, on a tiny synthetic dataset."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

from ftbook.check import make_synthetic

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "FTBOOK_DEVICE": "cpu"}

SCRIPT = textwrap.dedent("""
    import json, sys
    import torch, torch.distributed as dist
    from ftbook.data import get_items
    from ftbook.schedule import plan_fine_tune
    from ftbook.train import fit, setup_run
    dist.init_process_group("gloo")
    run = setup_run(get_items(sys.argv[1]), "efficientnet_lite0", size=32, bs=4, seed=0, pretrained=False)
    h = fit(*run, plan_fine_tune(1), seed=0, device=torch.device("cpu"))
    out = dict(rank=dist.get_rank(), checksum=sum(t.double().sum().item() for t in run.model.state_dict().values()),
               train_loss=h.train_loss.tolist(), valid_loss=h.valid_loss.tolist())
    json.dump(out, open(f"{sys.argv[2]}/rank{dist.get_rank()}.json", "w"))
    dist.destroy_process_group()
""")


def torchrun(*args, cwd):
    r = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", *map(str, args)],
                       capture_output=True, text=True, env=ENV, cwd=cwd, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def test_two_processes_train_the_same_model(tmp_path):
    data = make_synthetic(tmp_path / "shapes", n_train=10, n_valid=4, size=40)
    (tmp_path / "ddp.py").write_text(SCRIPT)
    torchrun(tmp_path / "ddp.py", data, tmp_path, cwd=tmp_path)
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["checksum"] == r1["checksum"]            # averaged gradients and BN statistics: identical models
    assert r0["train_loss"] == r1["train_loss"]        # epoch statistics summed over both shards
    assert r0["valid_loss"] == r1["valid_loss"]


def test_cli_finetune_under_torchrun(tmp_path):
    data = make_synthetic(tmp_path / "shapes", n_train=10, n_valid=4, size=40)
    out = tmp_path / "run"
    torchrun(BIN / "ftbook", "finetune", data, "--method", "fine_tune", "--arch", "efficientnet_lite0", "--epochs", "1",
             "--size", "32", "--bs", "4", "--out", out, cwd=tmp_path)
    for f in ["history.csv", "metrics.json", "model.pth", "last.pth", "curves.png"]:
        assert (out / f).exists(), f
    assert len(pd.read_csv(out / "history.csv")) == 2
    assert json.loads((out / "metrics.json").read_text())["settings"]["method"] == "fine_tune"
