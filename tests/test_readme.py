"The README's caption states the data-size answer computed from the committed reference, line for line."
import re
from pathlib import Path

import pandas as pd

from ftbook.sizes import size_answer

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_caption_is_the_committed_answer():
    runs = pd.read_csv(ROOT / "results" / "sizes" / "runs.csv")
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- size_answer: begin -->\n(.*?)<!-- size_answer: end -->", readme, re.S)
    assert block, "README.md has no size_answer block"
    stated = [line.removeprefix("- ") for line in block.group(1).splitlines()]
    assert stated == size_answer(runs), "rewrite the block from size_answer(results/sizes/runs.csv)"
