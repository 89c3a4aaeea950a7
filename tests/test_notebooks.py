"""Notebooks are stored clean (nbval compares stored outputs), and every chapter of the book is in the table of contents."""
import json
from pathlib import Path

import pytest

NBS = sorted((Path(__file__).resolve().parents[1] / "nbs").glob("*.ipynb"))


@pytest.mark.parametrize("nb", NBS, ids=[p.name for p in NBS])
def test_stored_without_outputs_and_only_tags_metadata(nb):
    cells = json.loads(nb.read_text())["cells"]
    assert not [i for i, c in enumerate(cells) if c.get("outputs") or c.get("execution_count")], "clear outputs before committing"
    assert {k for c in cells for k in c["metadata"]} <= {"tags"}


def test_every_notebook_is_in_the_toc():
    toc = (NBS[0].parents[1] / "_toc.yml").read_text()
    assert all(f"nbs/{p.stem}" in toc for p in NBS)


@pytest.mark.parametrize("nb", [p for p in NBS if p.stem != "index"], ids=lambda p: p.name)
def test_chapter_shape(nb):
    cells = json.loads(nb.read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "".join(cells[0]["source"]).startswith("# ") and "\n> " in "".join(cells[0]["source"])  # title + summary
    assert "## Summary" in text and "## Exercises" in text
    assert any("#| default_exp" in "".join(c["source"]) for c in cells)
