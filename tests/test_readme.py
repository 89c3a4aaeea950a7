"The README's caption states the data-size answer computed from the committed reference, word for word."
from pathlib import Path

import pandas as pd

from ftbook.sizes import size_answer

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_caption_is_the_committed_answer():
    runs = pd.read_csv(ROOT / "results" / "sizes" / "runs.csv")
    readme = " ".join((ROOT / "README.md").read_text().split())  # line breaks are the editor's
    missing = [line for line in size_answer(runs) if " ".join(line.split()) not in readme]
    assert not missing, "README.md's caption lacks (run size_answer on results/sizes/runs.csv):\n" + "\n".join(missing)
