"""Shared helpers: a dataset with one bad file of every kind the checker knows, a snapshot of a folder, and the
`ftbook` command run in this process or in a new one."""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
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


FTBOOK = str(Path(sys.executable).parent / "ftbook")
ENV = {"HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "FTBOOK_DEVICE": "cpu"}


def ftbook_process(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    "The console script in a new process, as a user runs it (environment: ours, `ENV`, then `env`)."
    return subprocess.run([FTBOOK, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **ENV, **(env or {})})


def ftbook_started(*args) -> subprocess.Popen:
    """The console script started in a new process, its output piped as text, and interruptible by SIGINT as in a
    terminal, even when these tests run in a background job (`make test &`), whose processes ignore SIGINT: a
    handler here is reset to the default in the new process, an ignored signal would stay ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([FTBOOK, *map(str, args)], env={**os.environ, **ENV}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def descriptors_captured():
    "File descriptors 1 and 2 (and `sys.stdout`, `sys.stderr` on them) into two temporary files."
    files = [tempfile.TemporaryFile() for _ in range(2)]
    streams = sys.stdout, sys.stderr
    for stream in streams: stream.flush()
    saved = [os.dup(fd) for fd in (1, 2)]
    try:
        for fd, f in zip((1, 2), files): os.dup2(f.fileno(), fd)
        sys.stdout, sys.stderr = (open(fd, "w", buffering=1, closefd=False) for fd in (1, 2))
        yield files
    finally:
        for stream in (sys.stdout, sys.stderr): stream.flush()
        sys.stdout, sys.stderr = streams
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


def ftbook(*args) -> subprocess.CompletedProcess:
    """`ftbook.cli.main`, the console script's body, in this process with `ENV` set: what it writes on both file
    descriptors (C libraries' writes too) and its exit status. A new process per run would cost about ten seconds
    of imports each; `ftbook_process` is for the tests where the process itself is the point."""
    from ftbook.cli import main
    argv = [str(a) for a in args]
    before = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    try:
        with descriptors_captured() as files:
            try:
                code = main(argv)
            except SystemExit as e:  # argparse: --help, --version, a bad option
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        for k, v in before.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
    texts = []
    for f in files:
        f.seek(0)
        texts.append(f.read().decode())
        f.close()
    return subprocess.CompletedProcess(["ftbook", *argv], code, *texts)
