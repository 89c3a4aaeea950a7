"""Activation maps at the command line: `predict --cam DIR` writes one overlay per readable photo, named after it and
its predicted class, and refuses an .onnx file (no gradients) in one line before printing anything; `evaluate --out`
redraws its most-confidently-wrong grid with the maps. What the maps mean is measured in nbs/07d_cam."""
import shutil

from PIL import Image

from conftest import ftbook
from ftbook.check import make_synthetic

TINY = ["--arch", "efficientnet_lite0", "--size", "32", "--bs", "8"]


def test_predict_cam_and_evaluate_maps(tmp_path):
    shapes = make_synthetic(tmp_path / "shapes", n_train=8, n_valid=4, n_test=3, size=48)
    r = ftbook("finetune", shapes, "--method", "probe", "--epochs", "1", *TINY, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    photos = tmp_path / "photos"
    shutil.copytree(shapes / "test", photos)
    (photos / "broken.jpg").write_text("not an image")
    p = ftbook("predict", tmp_path / "run" / "model.pth", photos, "--cam", tmp_path / "cams")
    assert p.returncode == 0, p.stderr
    lines = [line.split("\t") for line in p.stdout.splitlines()[:-1]]
    names = sorted(f.name for f in (tmp_path / "cams").iterdir())
    assert names == sorted(f"{fields[0].rsplit('/', 1)[-1].rsplit('.', 1)[0]}.{fields[1]}.png" for fields in lines)
    assert len(names) == 6 and p.stdout.splitlines()[-1] == f"wrote 6 activation maps to {tmp_path / 'cams'}/"
    assert Image.open(tmp_path / "cams" / names[0]).size == (32, 32)
    x = ftbook("export", tmp_path / "run" / "model.pth", "--out", tmp_path / "m.onnx")
    assert x.returncode == 0, x.stderr
    o = ftbook("predict", tmp_path / "m.onnx", photos, "--cam", tmp_path / "none")
    assert o.returncode != 0 and o.stdout == "" and "no gradients" in o.stderr
    assert len(o.stderr.strip().splitlines()) == 1 and not (tmp_path / "none").exists()
    e = ftbook("evaluate", tmp_path / "run" / "model.pth", shapes, "--split", "test", "--out", tmp_path / "ev")
    assert e.returncode == 0, e.stderr
