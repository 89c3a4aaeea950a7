"""The built book's pages, read as a reader sees them (prose and outputs, not code): no temporary path, no
traceback or warning line, no float printed with more than four decimals. Runs after `make book` (the Makefile's
book target calls it); skipped when the book has not been built."""
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

HTML = Path(__file__).resolve().parents[1] / "_build" / "html"
PAGES = sorted(HTML.glob("nbs/*.html")) if HTML.exists() else []
ALLOWED = {  # page -> substrings that may match (each one explained)
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


PROBLEMS = {
    "a temporary path": re.compile(r"/tmp/|/var/folders/|\btmp[a-z0-9_]{8}\b"),
    "a traceback": re.compile(r"Traceback \(most recent call last\)"),
    "a warning line": re.compile(r"\b[A-Z]\w*Warning\b:|^\s*warnings\.warn", re.M),
    "a float with more than 4 decimals": re.compile(r"(?<![\w.])\d+\.\d{5,}\b"),
}


@pytest.mark.skipif(not PAGES, reason="the book is not built (make book)")
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_a_page_reads_clean(page):
    text = text_of(page)
    for allowed in ALLOWED.get(page.name, []): text = text.replace(allowed, "")
    found = {what: sorted(set(m.group(0) for m in rx.finditer(text)))[:5] for what, rx in PROBLEMS.items()}
    assert not any(found.values()), {k: v for k, v in found.items() if v}


def test_the_reader_text_skips_code():
    page = ('<div class="cell_input docutils container"><pre>x = 0.123456789</pre></div><p>prose 0.12</p>'
            '<table class="fastprogress"><tr><td>0.437412</td></tr></table>')
    parser = PageText()
    parser.feed(page)
    assert "".join(parser.parts) == "prose 0.12"
