"""Shared helpers: a dataset with one bad file of every kind the checker knows, and a snapshot of a folder."""
import hashlib
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from PIL import Image

from ftbook.check import make_synthetic

# file name -> (level, substring of the reason); every bad case of the broken dataset below
EXPECTED = {
    "zero.jpg": ("warning", "empty file (0 bytes): will be skipped"),
    "truncated.jpg": ("warning", "truncated"),
    "text.jpg": ("warning", "not an image"),
    "gif_as.jpg": ("warning", "GIF content with .jpg extension"),
    "anim.gif": ("warning", "animated GIF (3 frames), first frame used"),
    "mode_l.png": ("warning", "mode L converted to RGB"),
    "mode_p.png": ("warning", "mode P converted to RGB"),
    "mode_cmyk.jpg": ("warning", "mode CMYK converted to RGB"),
    "mode_rgba.png": ("warning", "mode RGBA converted to RGB"),
    "mode_i16.png": ("warning", "mode I;16 converted to RGB"),
    "tiny.png": ("warning", "tiny image 8x8"),
    "dup.jpg": ("warning", "same content as train/circle/circle_train002.jpg (a train/valid duplicate"),
    "empty": ("warning", "empty class folder"),
}
UNREADABLE = {"zero.jpg", "truncated.jpg", "text.jpg"}


def build_broken(root: Path) -> Path:
    "Synthetic circles/squares plus one file (or folder) for every problem `check_dataset` knows."
    make_synthetic(root, n_train=6, n_valid=3, size=48)
    tr, va = root / "train" / "circle", root / "val" / "square"
    (tr / "zero.jpg").touch()
    good = (tr / "circle_train000.jpg").read_bytes()
    (tr / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tr / "text.jpg").write_text("this is not an image\n")
    Image.new("RGB", (40, 40), "red").save(tr / "gif_as.jpg", format="GIF")
    frames = [Image.new("RGB", (40, 40), c) for c in ("red", "green", "blue")]
    frames[0].save(tr / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("L", (40, 40), 128).save(tr / "mode_l.png")
    Image.new("RGB", (40, 40), (0, 128, 0)).convert("P", palette=Image.Palette.ADAPTIVE).save(tr / "mode_p.png")
    Image.new("CMYK", (40, 40), (0, 90, 90, 0)).save(tr / "mode_cmyk.jpg")
    Image.new("RGBA", (40, 40), (255, 0, 0, 0)).save(tr / "mode_rgba.png")
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(tr / "mode_i16.png")
    Image.new("RGB", (8, 8), "blue").save(va / "tiny.png")
    shutil.copy(tr / "circle_train002.jpg", root / "val" / "circle" / "dup.jpg")
    (root / "train" / "empty").mkdir()
    return root


def snapshot(root: Path) -> dict:
    "Relative path -> sha256 for every file, and every folder (None), under `root`."
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="session")
def broken(tmp_path_factory) -> Path:
    return build_broken(tmp_path_factory.mktemp("broken") / "data")
