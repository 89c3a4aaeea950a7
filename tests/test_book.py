"""The built book's pages, read as a reader sees them (prose and outputs, not code): no temporary path, no
absolute path outside the repository and the data folder, no traceback or warning line, no NumPy scalar repr,
no float printed with more than four decimals. Runs after `make book` (the Makefile's book target calls it);
skipped when the book has not been built."""
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / "_build" / "html"
PAGES = sorted(HTML.glob("nbs/*.html")) if HTML.exists() else []
ALLOWED = {  # page -> substrings that may match (each one explained)
    "index.html": ["/folder/holding/the/datasets"],  # a placeholder for the reader's own folder
}


class PageText(HTMLParser):
    "The text a reader reads: prose and cell outputs, without code inputs, scripts and styles."
    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], []

    def handle_starttag(self, tag, attrs):
        classes = dict(attrs).get("class", "") or ""
        # fastai's own progress table prints six decimals, as every fastai user knows it: not ours to round
        if self.skip or tag in ("script", "style") or "cell_input" in classes or "fastprogress" in classes:
            self.skip.append(tag)

    def handle_endtag(self, tag):
        if self.skip and self.skip[-1] == tag: self.skip.pop()

    def handle_data(self, data):
        if not self.skip: self.parts.append(data)


def text_of(page: Path) -> str:
    parser = PageText()
    parser.feed(page.read_text(encoding="utf-8"))
    return "".join(parser.parts)


def data_folder() -> Path:
    "Where the datasets are: `$FTBOOK_DATA`, else ftbook's cache (as `ftbook.core.data_root` looks)."
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ftbook" / "data"
    return Path(os.environ.get("FTBOOK_DATA") or cache).expanduser().resolve()


def outside(path: str) -> bool:
    "An absolute path in neither the repository nor the data folder: the builder's machine, not the reader's."
    return not any(Path(path).resolve().is_relative_to(root) for root in (REPO, data_folder()))


PROBLEMS = {
    "a temporary path": re.compile(r"/tmp/|/var/folders/|\btmp[a-z0-9_]{8}\b"),
    # a "/" starting a word (not in a URL, not after "~"), then 2+ parts: /root/.cache, not train/ants
    "a path outside the repo and the data": re.compile(r"(?<![\w.:/~-])/[\w.+-]+(?:/[\w.+-]+)+/?"),
    "a traceback": re.compile(r"Traceback \(most recent call last\)"),
    "a warning line": re.compile(r"\b[A-Z]\w*Warning\b:|^\s*warnings\.warn", re.M),
    "a NumPy scalar repr": re.compile(r"\bnp\.(?:(?:u?int|float|complex|bool|str)\w*\(|True_|False_)"),
    "a float with more than 4 decimals": re.compile(r"(?<![\w.])\d+\.\d{5,}\b"),
}
KEEP = {"a path outside the repo and the data": outside}  # kind -> which of its matches are problems


def problems(text: str) -> dict:
    "What a reader should not read in `text`, by kind: up to five examples of each kind found."
    found = {what: sorted({m.group(0) for m in rx.finditer(text)}) for what, rx in PROBLEMS.items()}
    found = {what: [h for h in hits if KEEP.get(what, bool)(h)][:5] for what, hits in found.items()}
    return {what: hits for what, hits in found.items() if hits}


@pytest.mark.skipif(not PAGES, reason="the book is not built (make book)")
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_a_page_reads_clean(page):
    text = text_of(page)
    # torchvision's own line before an offline download fails (the page explains the cache in words)
    text = re.sub(r'Downloading: "https://download\.pytorch\.org/[^"]*" to \S+', "", text)
    for allowed in ALLOWED.get(page.name, []): text = text.replace(allowed, "")
    assert problems(text) == {}


def test_the_reader_text_skips_code():
    page = ('<div class="cell_input docutils container"><pre>x = 0.123456789</pre></div><p>prose 0.12</p>'
            '<table class="fastprogress"><tr><td>0.437412</td></tr></table>')
    parser = PageText()
    parser.feed(page)
    assert "".join(parser.parts) == "prose 0.12"


def test_the_page_check_finds_machine_paths_and_numpy_reprs():
    flagged = ["weights in /root/.cache/x.pth", "best epoch np.int64(3)"]
    clean = ["see https://pytorch.org/hub/x.pth", "images in train/ants/", "a page of ~/.cache/ftbook",
             f"the notebook {REPO / 'nbs' / '01_data.ipynb'}", f"images in {data_folder() / 'x' / 'a.jpg'}"]
    assert [sorted(problems(t)) for t in flagged] == [["a path outside the repo and the data"],
                                                      ["a NumPy scalar repr"]]
    assert [problems(t) for t in clean] == [{}] * len(clean)
