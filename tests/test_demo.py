"""`ftbook demo` as a user meets it: the command started in its own process, the page driven in headless Chromium
(Debian's `chromium`, which `.ci/run` installs) through Playwright. A rotated phone photo chosen on the page shows
upright, with `predict`'s label and probabilities (to 1e-4), an unusable file gets its own one-line message, and no
request leaves 127.0.0.1. Screenshots at a phone's and a desktop's width go to $FTBOOK_SCREENSHOTS when it is set.
What the endpoint answers to bad uploads and under load is measured in nbs/07e_demo; here, what only a process or an
exported model shows: the port in use, the note for another address, and the .onnx file (no map)."""
import os
import shutil
import signal
from urllib.parse import urlparse

import pytest
from PIL import Image

from conftest import ftbook, ftbook_started
from ftbook.check import make_synthetic

TINY = ["--arch", "efficientnet_lite0", "--size", "32", "--bs", "8"]
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    "A probe on circles and squares, written by `ftbook finetune`: model.pth with its unknown flag, split.csv."
    root = tmp_path_factory.mktemp("demo")
    shapes = make_synthetic(root / "shapes", n_train=10, n_valid=4, n_test=3, size=48)
    r = ftbook("finetune", shapes, "--method", "probe", "--epochs", "2", *TINY, "--out", root / "run")
    assert r.returncode == 0, r.stderr
    return shapes, root / "run"


def phone_photo(src, dest):
    "`src` stored as a phone stores a portrait shot: the pixels on their side, EXIF orientation 6 to turn them."
    upright = Image.open(src).convert("RGB").resize((48, 64))
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(dest, exif=exif, quality=95)
    return dest


def started(*args):
    "The `ftbook demo` process, its note lines on stderr, and the URL it printed."
    server = ftbook_started("demo", *args)
    line = server.stdout.readline()
    assert line.startswith("serving ") and "Ctrl+C stops" in line, (line, server.communicate()[1])
    return server, line.split(" at ")[1].split(" ")[0]


def stopped(server):
    "Ctrl+C: the server stops, exit status 0; what it wrote on stderr."
    server.send_signal(signal.SIGINT)
    _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    return err


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="no chromium on this machine")
def test_the_page_in_a_browser_answers_as_predict(run, tmp_path):
    from playwright.sync_api import sync_playwright
    from ftbook.inference import predict_table
    shapes, out = run
    photo = phone_photo(sorted((shapes / "test").rglob("*.jpg"))[0], tmp_path / "IMG_0001.jpg")
    broken = tmp_path / "notes.jpg"
    broken.write_text("not a photo")
    expected, _ = predict_table(out / "model.pth", [photo], top_k=2)
    shots = os.environ.get("FTBOOK_SCREENSHOTS")
    server, url = started(out / "model.pth", "--port", "0")
    try:
        requests = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM)
            for name, width, height in (("phone", 390, 800), ("desktop", 1200, 760)):
                page = browser.new_page(viewport=dict(width=width, height=height))
                page.on("request", lambda r: requests.append(r.url))
                page.goto(url)
                page.wait_for_selector("#examples img")  # the run's validation photos, from split.csv
                page.set_input_files("#files", [str(broken), str(photo)])
                page.wait_for_function("document.querySelectorAll('.card.done').length == 2")
                card = page.locator(".card").first  # the newest first: the photo
                assert card.get_attribute("data-label") == expected.label[0]
                bars = {b.get_attribute("data-label"): float(b.get_attribute("data-probability"))
                        for b in card.locator(".bar").all()}
                assert abs(bars[expected.label[0]] - expected.probability[0]) < 1e-4
                assert abs(bars[expected.label_2[0]] - expected.probability_2[0]) < 1e-4
                size = card.locator("figure img").first.evaluate("i => [i.naturalWidth, i.naturalHeight]")
                assert size == [48, 64]  # upright, as the photo was taken
                error = page.locator(".card").nth(1).locator(".error").inner_text()
                assert error.startswith("notes.jpg: not an image"), error
                if shots: page.screenshot(path=os.path.join(shots, f"demo_{name}.png"), full_page=True)
            browser.close()
        hosts = {urlparse(u).hostname for u in requests if not u.startswith(("data:", "blob:"))}
        assert hosts == {"127.0.0.1"}, requests
    finally:
        assert stopped(server) == ""


def test_serving_elsewhere_says_so_and_a_port_in_use_is_one_line(run):
    from ftbook.demo import bind
    _, out = run
    server, url = started(out / "model.pth", "--host", "0.0.0.0", "--port", "0")
    port = urlparse(url).port
    with bind("127.0.0.1", 0) as taken:
        busy = taken.getsockname()[1]
        r = ftbook("demo", out / "model.pth", "--port", busy)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and r.stdout == "" and len(lines) == 1, r.stderr
    assert lines[0] == f"ftbook demo: error: cannot serve on 127.0.0.1:{busy} (Address already in use)"
    note = stopped(server).strip().splitlines()
    assert url == f"http://0.0.0.0:{port}/" and len(note) == 1
    assert note[0].startswith("ftbook demo: note: serving on 0.0.0.0, not only on this computer")


def test_an_exported_model_answers_the_same_without_maps(run, tmp_path):
    from starlette.testclient import TestClient
    from ftbook.demo import demo_app
    from ftbook.inference import predict_table
    shapes, out = run
    x = ftbook("export", out / "model.pth", "--out", tmp_path / "m.onnx")
    assert x.returncode == 0, x.stderr
    photo = sorted((shapes / "test").rglob("*.jpg"))[0]
    files = [("files", (photo.name, photo.read_bytes()))]
    def answer(model):
        client = TestClient(demo_app(model), base_url="http://127.0.0.1")
        return client.post("/predict?images=1", files=files).json()[0]
    pth, onnx = answer(out / "model.pth"), answer(tmp_path / "m.onnx")
    assert pth["cam"].startswith("data:image/png;base64,") and onnx["cam"] is None
    expected, _ = predict_table(tmp_path / "m.onnx", [photo])  # as predict answers with the .onnx file
    assert (onnx["label"], onnx["unknown"]) == (expected.label[0], expected.unknown[0])
    assert abs(onnx["probability"] - expected.probability[0]) < 1e-6
