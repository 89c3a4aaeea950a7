"""Packaging: the wheel builds, installs into a fresh venv without the dev extras, and its CLI works there.

To stay fast and offline, the fresh venv sees the already-installed pinned dependencies (torch, fastai, ...) through a
.pth file; ftbook itself comes only from the wheel, and `pip check` verifies its requirements are satisfied."""
import os
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from pathlib import Path

import pytest

from ftbook import __version__

ROOT = Path(__file__).resolve().parents[1]


def run(*cmd, cwd=None, env=None):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out, ROOT, cwd=out)
    (whl,) = out.glob("ftbook-*.whl")
    return whl


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    modules = sorted(f"ftbook/{p.name}" for p in (ROOT / "ftbook").glob("*.py"))
    assert "ftbook/train.py" in modules and not set(modules) - set(names)  # every module exported
    assert not [n for n in names if n.endswith(".ipynb") or n.startswith("tests/")]
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Dist: torch" in meta and "Requires-Dist: timm" in meta
    assert "nbdev" not in meta.split("Provides-Extra: dev")[0]  # dev tools only in the extra
    ep = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "ftbook = ftbook.cli:main" in ep


def test_fresh_venv_install_and_cli(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    site = run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    deps = sysconfig.get_paths()["purelib"]  # this (test) environment's site-packages: the pinned stack
    Path(site, "_pinned_stack.pth").write_text(deps + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    run(py, "-m", "pip", "uninstall", "-y", "setuptools", env=env)  # venv's bundled copy would shadow the stack's
    run(py, "-m", "pip", "install", "--no-index", "--no-deps", "--force-reinstall", wheel, env=env)
    run(py, "-m", "pip", "check", env=env)
    out = tmp_path / "elsewhere"; out.mkdir()
    where = run(py, "-c", "import ftbook; print(ftbook.__file__)", cwd=out, env=env)
    assert where.startswith(site), where  # the wheel's copy, not the repo's
    ftb = env_dir / "bin" / "ftbook"
    assert run(ftb, "--version", cwd=out, env=env).strip() == f"ftbook {__version__}"  # the console script


def test_import_is_light():
    "`ftbook --help`'s work (import the CLI, build its parser) needs neither torch, fastai nor IPython: instant."
    code = ("import sys, time; t = time.perf_counter(); import ftbook, ftbook.cli; "
            "ftbook.cli.build_parser(); "
            "print(round(time.perf_counter() - t, 3), 'fastai' in sys.modules, 'torch' in sys.modules, 'IPython' in sys.modules)")
    secs, fastai, torch, ipython = run(sys.executable, "-c", code).split()
    assert (fastai, torch, ipython) == ("False", "False", "False")
    assert float(secs) < 1.0
    code = ("import sys; import ftbook.train, ftbook.study, ftbook.sizes, ftbook.check, ftbook.finetune, "
            "ftbook.inference; print('fastai' in sys.modules)")
    assert run(sys.executable, "-c", code).strip() == "False"  # the loop never needs fastai
    code = "import sys; import ftbook.inference; print('ftbook.train' in sys.modules)"
    assert run(sys.executable, "-c", code).strip() == "False"  # using a model never imports the loop
