"""Notebooks are stored clean (nbval compares stored outputs), fit the book's column, and every chapter is in the
table of contents with the chapter shape."""
import json
from pathlib import Path

import pytest

NBS = sorted((Path(__file__).resolve().parents[1] / "nbs").glob("*.ipynb"))
MAX_COLUMNS = 100  # the rendered book clips code lines longer than this


@pytest.mark.parametrize("nb", NBS, ids=[p.name for p in NBS])
def test_stored_without_outputs_and_only_tags_metadata(nb):
    cells = json.loads(nb.read_text())["cells"]
    assert not [i for i, c in enumerate(cells) if c.get("outputs") or c.get("execution_count")], "clear outputs"
    assert {k for c in cells for k in c["metadata"]} <= {"tags"}


@pytest.mark.parametrize("nb", NBS, ids=[p.name for p in NBS])
def test_code_lines_fit_the_column(nb):
    cells = json.loads(nb.read_text())["cells"]
    long = [(i, line.rstrip("\n")) for i, c in enumerate(cells) if c["cell_type"] == "code"
            for line in c["source"] if len(line.rstrip("\n")) > MAX_COLUMNS]
    assert not long, f"{len(long)} code lines over {MAX_COLUMNS} columns, first in cell {long[0][0]}: {long[0][1]}"


def test_every_notebook_is_in_the_toc():
    toc = (NBS[0].parents[1] / "_toc.yml").read_text()
    assert all(f"nbs/{p.stem}" in toc for p in NBS)


@pytest.mark.parametrize("nb", [p for p in NBS if p.stem != "index"], ids=lambda p: p.name)
def test_chapter_shape(nb):
    cells = json.loads(nb.read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "".join(cells[0]["source"]).startswith("# ") and "\n> " in "".join(cells[0]["source"])  # title, summary
    assert "## Summary" in text and "## Exercises" in text
    assert any("#| default_exp" in "".join(c["source"]) for c in cells)


def test_no_semicolon_joined_statements_in_the_package():
    import ast
    pkg = NBS[0].parents[1] / "ftbook"
    joined = []
    for f in pkg.glob("*.py"):
        lines = f.read_text().splitlines()
        for node in ast.walk(ast.parse(f.read_text())):
            body = getattr(node, "body", None)
            if isinstance(body, list):
                joined += [f"{f.name}:{a.lineno}" for a, b in zip(body, body[1:]) if a.end_lineno == b.lineno]
    assert len(joined) <= 5, joined


@pytest.mark.parametrize("nb", NBS, ids=[p.name for p in NBS])
def test_every_page_can_install_ftbook_first(nb):
    "Launched on Colab or Binder, a chapter installs the package in its first code cell (a no-op elsewhere)."
    cells = json.loads(nb.read_text())["cells"]
    first_code = next(c for c in cells if c["cell_type"] == "code")
    assert 'importlib.util.find_spec("ftbook") is None' in "".join(first_code["source"])


def test_the_publish_workflow_builds_and_deploys_the_book():
    import yaml
    root = NBS[0].parents[1]
    wf = yaml.safe_load((root / ".github" / "workflows" / "book.yml").read_text())
    assert wf[True]["push"]["branches"] == ["main"] and "workflow_dispatch" in wf[True]  # YAML's `on:` is True
    assert wf["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    uses = [step.get("uses", "").split("@")[0] for step in build["steps"]]
    assert uses[:2] == ["actions/checkout", "actions/setup-python"]
    assert any(step.get("run") == "make book" for step in build["steps"])
    upload = next(step for step in build["steps"] if step.get("uses", "").startswith("actions/upload-pages"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages")
    config = yaml.safe_load((root / "_config.yml").read_text())
    assert {"binderhub_url", "colab_url"} <= set(config["launch_buttons"]) and config["repository"]["url"]
