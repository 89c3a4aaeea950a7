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


def test_every_kind_of_backbone_gets_a_map_or_one_clear_refusal():
    "Lite0, a torchvision ResNet and a timm CNN (random weights: nothing downloads) map; a ViT body is refused."
    import pytest
    import torch
    from ftbook.cam import grad_cam, randomized
    from ftbook.models import create_model
    x = torch.randn(2, 3, 64, 64)
    for arch in ("efficientnet_lite0", "resnet18", "resnet10t"):
        model = create_model(arch, 3, pretrained=False).eval()
        maps, classes = grad_cam(model, x)
        assert maps.shape == (2, 64, 64) and 0 <= maps.min() and maps.max() <= 1 + 1e-6, arch
        with torch.no_grad():  # as if trained: no parameter left at its initial value
            for p in model.parameters(): p.add_(0.01 * torch.randn_like(p))
        shuffled = randomized(model, 2, arch)  # the head and the top body group: every parameter changed
        from ftbook.models import layer_groups
        top = [p for g in layer_groups(model, arch)[-2:] for m in g for p in m.parameters()]
        new = [p for g in layer_groups(shuffled, arch)[-2:] for m in g for p in m.parameters()]
        assert all(not torch.equal(a, b) for a, b in zip(top, new)), arch
    vit = create_model("vit_tiny_patch16_224", 2, pretrained=False).eval()
    with pytest.raises(ValueError, match="not a feature map"):
        grad_cam(vit, torch.randn(1, 3, 224, 224))


def test_maps_files_keep_every_photo_and_numeric_class_names(tmp_path):
    "Two folders with the same file name both get an overlay; classes named '0' and '1' survive the CSV round trip."
    import pandas as pd
    from ftbook.cam import save_cams, top_loss_maps
    from ftbook.models import create_model, get_backbone
    from ftbook.inference import save_model
    model = create_model("efficientnet_lite0", 2, pretrained=False).eval()
    meta = dict(arch="efficientnet_lite0", head="linear", vocab=["0", "1"], size=32,
                stats=get_backbone("efficientnet_lite0").stats, precision="fp32")
    save_model(model, meta, tmp_path / "model.pth")
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        Image.new("RGB", (40, 40), (10 * len(d), 200, 30)).save(tmp_path / d / "x.png")
    written, _ = save_cams(tmp_path / "model.pth", [tmp_path / "a", tmp_path / "b"], tmp_path / "cams")
    assert len(written) == len(set(written)) == 2 and all(p.exists() for p in written)
    pd.DataFrame(dict(path=[str(tmp_path / "a" / "x.png")], label=["0"], predicted=["1"],
                      probability=[0.9])).to_csv(tmp_path / "predictions.csv", index=False)
    assert top_loss_maps(tmp_path / "model.pth", tmp_path) and (tmp_path / "top_losses.png").exists()
