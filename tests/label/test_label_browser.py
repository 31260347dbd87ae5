"""The labelling page in a real headless Chromium (Debian's chromium + chromedriver, via selenium):
label five crops with the keyboard, undo one, SIGKILL the server mid-way, restart, finish; LABELS
must then hold exactly the answers given, once each. scripts/setup_venv.sh installs the browser."""

from __future__ import annotations

import shutil
import tempfile

import pandas as pd
import pytest
from conftest import write_queue
from selenium import webdriver  # a dev extra (pyproject.toml): CI has it, so this test never skips
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

KEYS = {"signal": "s", "not_signal": "n", "skip": "k", "undo": "u"}


@pytest.fixture
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):  # CI installs both (scripts/setup_venv.sh); never a silent skip there
        pytest.fail("chromium and chromedriver are required (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="cropray-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver), options=opts)
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def shown(drv) -> str:
    return drv.find_element(By.ID, "crop-id").text


def press(drv, what: str, expect_next: str | None) -> None:
    """Press a key on the page and wait until it shows `expect_next` (the server answered)."""
    drv.find_element(By.TAG_NAME, "body").send_keys(KEYS[what])
    WebDriverWait(drv, 30).until(lambda d: shown(d) == (expect_next or "")
                                 and (expect_next or d.find_element(By.ID, "done").is_displayed()))


def open_page(drv, srv, expect: str) -> None:
    drv.get(srv.url)
    WebDriverWait(drv, 30).until(lambda d: shown(d) == expect)
    img = drv.find_element(By.ID, "crop")
    WebDriverWait(drv, 30).until(lambda d: d.execute_script("return arguments[0].naturalWidth", img) == 384)


def test_keyboard_labelling_survives_sigkill_and_restart(tmp_path, label_server, browser):
    ids = write_queue(tmp_path / "q.parquet", 8)
    labels = tmp_path / "labels"
    srv = label_server(tmp_path / "q.parquet", labels)
    open_page(browser, srv, ids[0])
    given = {}
    plan = ["signal", "not_signal", "not_signal", "signal", "skip"]  # five crops by keyboard
    for i, word in enumerate(plan):
        press(browser, word, ids[i + 1])
        if word != "skip":
            given[ids[i]] = int(word == "signal")
    press(browser, "undo", ids[4])  # the skip of ids[4] is taken back
    press(browser, "undo", ids[3])  # and the label of ids[3]
    del given[ids[3]]
    press(browser, "not_signal", ids[4])  # ids[3] answered again, differently
    given[ids[3]] = 0
    srv.kill()  # SIGKILL mid-way: whatever was answered is on disk already
    df = pd.read_parquet(labels)
    assert dict(zip(df.crop_id, df.label)) == given and df.crop_id.is_unique
    srv2 = label_server(tmp_path / "q.parquet", labels)  # a new port, a new token
    open_page(browser, srv2, ids[4])  # resumes at the first unanswered crop
    for i, word in zip(range(4, 8), ["signal", "skip", "not_signal", "signal"]):
        press(browser, word, ids[i + 1] if i + 1 < len(ids) else None)
        if word != "skip":
            given[ids[i]] = int(word == "signal")
    assert browser.find_element(By.ID, "done").is_displayed()
    srv2.stop()
    df = pd.read_parquet(labels)
    assert len(df) == len(given) and df.crop_id.is_unique  # once each
    assert dict(zip(df.crop_id, df.label)) == given  # exactly the answers given
    assert set(df.columns) >= {"crop_id", "crop", "label", "score", "reason"}
