"""Bad input for the data chapter: odd and unreadable files decode the same way everywhere, unknown labels are
refused, and data.py never imports fastai. (Layouts, splits and loaders on real data: nbs/01_data.ipynb.)"""
import ast
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import ftbook.data
from conftest import UNREADABLE
from ftbook.data import HALF_STATS, DataError, ImageDataset, get_items, load_rgb, split_valid, torch_loaders


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
    with pytest.raises(DataError, match="file not found"): load_rgb(broken / "nope.jpg")


def test_refusals():
    items = pd.DataFrame(dict(path=["a.jpg"], label=["cat"], split=["train"], is_valid=[False]))
    with pytest.raises(DataError, match="not in the vocab"): ImageDataset(items, 32, HALF_STATS, vocab=["ant"])
    with pytest.raises(DataError, match="both are needed"): torch_loaders(items, 32, HALF_STATS)
    with pytest.raises(ValueError, match="between 0 and 1"): split_valid(items, valid_pct=1.5)


def test_tiny_classes_in_a_seeded_split():
    items = pd.DataFrame(dict(path=[f"{c}{i}.jpg" for c, n in [("a", 1), ("b", 2), ("c", 10)] for i in range(n)],
                              label=[c for c, n in [("a", 1), ("b", 2), ("c", 10)] for _ in range(n)], split="train"))
    valid = split_valid(items, 0.2, seed=0).query("split == 'valid'").label.value_counts().to_dict()
    assert valid == {"b": 1, "c": 2}  # one image: kept for training; two: one each; ten: 20 %


def test_module_does_not_import_fastai():
    tree = ast.parse(Path(ftbook.data.__file__).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names] + \
            [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not any(m and m.split(".")[0] == "fastai" for m in names), names
