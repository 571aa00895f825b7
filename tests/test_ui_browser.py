"""The operator page in a real browser: ``make ui`` on a free port, Debian's headless chromium driven by Playwright
(its executable from PATH; nothing is downloaded), the sample part predicted, a CSV uploaded and every row's
probability read off the page, a screenshot saved under build/. ``make test`` installs chromium when it is missing
(``ui/ensure-chromium.sh``)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.conftest import DATA_CSV, REPO_ROOT, make_app
from ui import form

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENSHOT = REPO_ROOT / "build" / "ui" / "page.png"
STARTUP_S = 120  # a cold first start on a busy 2-core machine; a usable page usually comes in a few seconds
ROWS = 6
FEATURES = form.Readings.of(str(REPO_ROOT / "models_onnx" / "v1.0")).features  # make ui serves v1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"make ui exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the page did not answer /_stcore/health within {STARTUP_S} s")


@pytest.fixture(scope="module")
def server():
    """``make ui PORT=<free>``: (its URL, seconds from the command to the health endpoint answering)."""
    port = _free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "ui", f"PORT={port}"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: make, streamlit and anything they start stop together
    )
    try:
        _wait_healthy(port, proc, started + STARTUP_S)
        yield f"http://127.0.0.1:{port}", time.monotonic() - started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    assert executable, "chromium is not installed: run bash ui/ensure-chromium.sh (make test does)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


def _sample_rows() -> list[dict[str, str]]:
    with open(DATA_CSV, newline="") as fh:
        rows = list(csv.DictReader(fh))[:ROWS]
    return [{"part_id": f"P{i:03d}", **{k: row[k] for k in form.sample_part()}} for i, row in enumerate(rows)]


def _csv_bytes(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _drawn(page) -> dict[str, float]:
    """Each reading's input as the browser draws it (the input's value, not the server's session state)."""
    return {f.name: float(page.get_by_label(form.label(f), exact=True).input_value()) for f in FEATURES}


def _shown_as(value: float) -> str:
    """A reading as the input draws it: the shortest digits that round-trip (JavaScript's, like Python's repr)."""
    return repr(value).removesuffix(".0")


def test_the_page_predicts_the_sample_and_scores_a_csv_as_the_handler_does(server, browser):
    url, startup_s = server
    page = browser.new_page(viewport={"width": 1400, "height": 3000})
    opened = time.monotonic()
    page.goto(url)
    page.get_by_role("button", name="Predict").wait_for(timeout=60_000)
    usable_s = startup_s + time.monotonic() - opened
    # Given a fresh page, Then its inputs draw the sample part's readings (not 0, the inputs' bare default).
    sample = form.sample_part()
    for feature in FEATURES:
        field = page.get_by_label(form.label(feature), exact=True)
        expect(field).to_have_value(_shown_as(sample[feature.name]), timeout=30_000)
    assert _drawn(page) == sample
    # Given the sample part on the form, When Predict is pressed, Then the page shows the handler's probability.
    page.get_by_role("button", name="Predict").click()
    page.get_by_text("Probability of a defect").wait_for(timeout=60_000)
    expected = make_app().handle({"features": form.sample_part()})["prediction"]
    page.get_by_text(form.shown(expected["probability"]), exact=True).wait_for(timeout=30_000)
    text = page.inner_text("body")
    assert "Traceback" not in text
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # When a CSV is uploaded on the Batch tab, Then each row's probability is on the page, as the handler answers it,
    # and the row with a bad reading is listed with the batch scorer's reason.
    rows = _sample_rows()
    bad = {**rows[0], "part_id": "BAD", "Process_Pressure": "abc"}
    page.get_by_role("tab", name="Batch").click()
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "parts.csv", "mimeType": "text/csv", "buffer": _csv_bytes([*rows, bad])}]
    )
    page.get_by_text(f"{ROWS} parts scored").wait_for(timeout=60_000)
    assert f"{ROWS} parts scored" in page.inner_text("body")
    assert "1 rejected" in page.inner_text("body")
    page.get_by_text("Process_Pressure: not a number ('abc')").wait_for(timeout=10_000)
    app = make_app()
    table = page.get_by_test_id("stDataFrame").first
    for row in rows:  # the grid draws its cells after the summary line: wait for each row, id then probability
        features = {k: float(v) for k, v in row.items() if k != "part_id"}
        probability = app.handle({"features": features})["prediction"]["probability"]
        expect(table).to_contain_text(row["part_id"] + form.shown(probability), timeout=30_000)
    page.screenshot(path=str(SCREENSHOT.with_name("batch.png")), full_page=True)

    # When a random part is loaded, Then the inputs draw that part: one row of the embedded data, not the sample.
    page.get_by_role("tab", name="One part").click()
    page.get_by_role("button", name="Load a random part from the data").click()
    first = page.get_by_label(form.label(FEATURES[0]), exact=True)
    expect(first).not_to_have_value(_shown_as(sample[FEATURES[0].name]), timeout=30_000)
    with open(DATA_CSV, newline="") as fh:
        data = [{f.name: float(row[f.name]) for f in FEATURES} for row in csv.DictReader(fh)]
    drawn = _drawn(page)
    assert drawn != sample
    assert drawn in data
    timing = {"make_ui_to_health_s": round(startup_s, 2), "make_ui_to_usable_page_s": round(usable_s, 2)}
    SCREENSHOT.with_name("timing.json").write_text(json.dumps(timing) + "\n")
    print(f"make ui -> usable page: {usable_s:.2f} s ({timing})")
