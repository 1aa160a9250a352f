"""The page in a real headless browser (Debian's Chromium + ChromeDriver, driven by Selenium):
load a store, filter, open a sample, check keypoints and mesh are drawn (pixels), mark three
samples, reload and see the marks, shard and find them excluded; curate with the keyboard and
by whole selections; forget a mark whose sample is gone; see a PROX sample's SMPL-X mesh.

Skips when Chromium, ChromeDriver or Selenium is absent (``apt-get install chromium
chromium-driver``, ``pip install selenium``). ``HMR_REVIEW_SCREENSHOT=path.png`` saves a
screenshot of the page (how docs/img/review.png was taken).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.review.conftest import KNOWN, KNOWN_PX, make_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
pytestmark = [pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                 reason="Chromium / ChromeDriver not installed (apt-get install chromium chromium-driver)"),
              pytest.mark.slow]


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,900", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, predicate, timeout=60):
    """Until ``predicate(driver)``; an element replaced while it was read (the page redraws
    the grid and the sample after each change) is read again at the next poll."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)
                         ).until(lambda d: predicate(d))


def _png(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=60) as r:
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


PIXEL_JS = """
const img = document.getElementById('view'), x = arguments[0], y = arguments[1];
const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d'); g.drawImage(img, 0, 0);
return Array.from(g.getImageData(x, y, 1, 1).data).slice(0, 3);
"""


def test_review_page_in_a_headless_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from hmr.review.draw import LEFT
    from hmr.review.index import ReviewIndex
    from hmr.review.server import serve_in_thread
    from loaders.shard import ShardConfig, shard_store

    path = make_store(tmp_path, n=24, name="web")
    server, _ = serve_in_thread(ReviewIndex([path]), 0)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        browser.get(url)
        cards = lambda d: d.find_elements(By.CSS_SELECTOR, "#grid .card")  # noqa: E731
        _wait(browser, lambda d: len(cards(d)) == 24)
        assert browser.find_element(By.ID, "total").text == "24"
        # filter: samples with SMPL only
        Select(browser.find_element(By.ID, "f-has_smpl")).select_by_value("1")
        browser.find_element(By.ID, "apply").click()
        _wait(browser, lambda d: browser.find_element(By.ID, "total").text == "12")
        assert all(int(c.get_attribute("data-row")) % 2 == 0 for c in cards(browser))
        # open sample 2 (SMPL, translation, intrinsics): the mesh covers the image centre
        browser.find_element(By.CSS_SELECTOR, '.card[data-row="2"]').click()
        _wait(browser, lambda d: d.execute_script("const i=document.getElementById('view');"
                                                  "return i && i.complete && i.naturalWidth > 0 && "
                                                  "i.src.endsWith('/view/0/2.png')"))
        # the pixel where the mesh changes the picture most, found from the server's two renders
        with_mesh, without = (_png(f"{url}view/0/2.png{q}") for q in ("", "?mesh=0"))
        diff = np.abs(with_mesh.astype(int) - without.astype(int)).sum(axis=2)
        y, x = np.unravel_index(np.argmax(diff), diff.shape)
        assert diff[y, x] > 60 and (diff > 20).sum() > 200  # a body, drawn
        assert browser.execute_script(PIXEL_JS, int(x), int(y)) == with_mesh[y, x].tolist()
        assert browser.execute_script(PIXEL_JS, 3, 3) == [90, 90, 90]  # the grey image where nothing is drawn
        # clear filters and open the sample with a keypoint at a known pixel
        Select(browser.find_element(By.ID, "f-has_smpl")).select_by_value("")
        browser.find_element(By.ID, "apply").click()
        _wait(browser, lambda d: browser.find_element(By.ID, "total").text == "24")
        browser.find_element(By.CSS_SELECTOR, f'.card[data-row="{KNOWN}"]').click()
        _wait(browser, lambda d: d.execute_script("const i=document.getElementById('view');"
                                                  f"return i && i.complete && i.naturalWidth > 0 && "
                                                  f"i.src.endsWith('/view/0/{KNOWN}.png')"))
        assert tuple(browser.execute_script(PIXEL_JS, *KNOWN_PX)) == LEFT
        # mark three samples
        for row, reason in ((3, "flipped"), (KNOWN, "cut box"), (11, "bad fit")):
            browser.find_element(By.CSS_SELECTOR, f'.card[data-row="{row}"]').click()
            _wait(browser, lambda d, r=row: d.find_element(By.CSS_SELECTOR, "#detail h3").text.endswith(f"#{r}"))
            box = browser.find_element(By.ID, "mark-reason")
            box.clear()
            box.send_keys(reason)
            browser.find_element(By.ID, "mark-btn").click()
            _wait(browser, lambda d: d.find_element(By.ID, "mark-state").text == f"marked: {reason}")
        # sort by pose rarity: computed in the background, the page waits for it and then sorts
        Select(browser.find_element(By.ID, "f-sort")).select_by_value("-rarity_mm")
        browser.find_element(By.ID, "apply").click()
        _wait(browser, lambda d: len(cards(d)) == 24 and int(cards(d)[0].get_attribute("data-row")) % 4 == 2
              and d.find_element(By.ID, "rarity-progress").text == "")
        assert (path.parent / "web_val.zarr.review-rarity.npz").is_file()
        # reload: the marks come from the file
        browser.get(url)
        _wait(browser, lambda d: len(cards(d)) == 24)
        marked = [int(c.get_attribute("data-row")) for c in browser.find_elements(By.CSS_SELECTOR, ".card.marked")]
        assert marked == [3, KNOWN, 11]
        shot = os.environ.get("HMR_REVIEW_SCREENSHOT")
        if shot:
            browser.find_element(By.CSS_SELECTOR, f'.card[data-row="{KNOWN}"]').click()
            _wait(browser, lambda d: d.execute_script("const i=document.getElementById('view');"
                                                      "return i && i.complete && i.naturalWidth > 0"))
            browser.save_screenshot(str(Path(shot)))
    finally:
        server.shutdown()
        server.server_close()
    # shard: the three marked samples are left out and listed
    set_dir = shard_store(path, tmp_path / "shards", ShardConfig(crop_size=64, samples_per_shard=8), progress=False)
    index = json.loads((set_dir / "index.json").read_text())
    assert index["num_samples"] == 21
    assert sorted(s["index"] for s in index["skipped"] if s.get("marked")) == [3, KNOWN, 11]


def test_keyboard_and_whole_selection_curation(browser, tmp_path):
    """A mark whose sample is not in the store is shown and forgotten on request; j / k /
    arrows walk the filtered list (across pages), x marks and unmarks the open sample, Esc
    closes it; the whole filtered selection (more than a page) is counted by the server,
    confirmed, marked with a reason and unmarked."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    from hmr.core.schema import open_store
    from hmr.review.index import ReviewIndex
    from hmr.review.marks import marks_path, resolve_marks
    from hmr.review.server import serve_in_thread

    path = make_store(tmp_path, n=100, name="keys")
    # a mark made on another conversion, whose sample is not in this one
    marks_path(path).write_text(json.dumps({
        "format": "hmrkit-review-marks", "schema": 2, "version": 1, "dataset": "keys", "split": "val",
        "marks": {"ann:5555": {"row": 3, "source_key": "ann:5555", "reason": "gone", "excluded": True}}}))
    server, _ = serve_in_thread(ReviewIndex([path]), 0)
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    def press(*keys):
        ActionChains(browser).send_keys(*keys).perform()

    def detail_row():
        return browser.execute_script("return document.getElementById('detail').dataset.row ?? null")

    def wait_row(row):
        _wait(browser, lambda d: detail_row() == str(row))

    try:
        browser.get(url)
        _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#grid .card")) == 48)
        _wait(browser, lambda d: "1 marks name samples not in this store" in d.find_element(By.ID, "missing-marks").text)
        assert "ann:5555 (gone)" in browser.find_element(By.ID, "missing-marks").text
        browser.find_element(By.CSS_SELECTOR, "#missing-marks button.forget").click()
        _wait(browser, lambda d: d.find_element(By.ID, "missing-marks").text == "")
        assert resolve_marks(path).missing == [] and resolve_marks(path).version == 2
        press("j")
        wait_row(0)
        press("j")
        wait_row(1)
        press("k")
        wait_row(0)
        press(Keys.ARROW_RIGHT)
        wait_row(1)
        assert browser.find_element(By.CSS_SELECTOR, ".card.selected").get_attribute("data-row") == "1"
        press("x")  # no reason typed anywhere: "excluded"
        _wait(browser, lambda d: d.find_element(By.ID, "mark-state").text == "marked: excluded")
        assert "marked" in browser.find_element(By.CSS_SELECTOR, '.card[data-row="1"]').get_attribute("class")
        assert {r: m["reason"] for r, m in resolve_marks(path).rows.items()} == {1: "excluded"}
        press("x")
        _wait(browser, lambda d: d.find_element(By.ID, "mark-state").text == "not marked")
        assert resolve_marks(path).rows == {}
        press(Keys.ESCAPE)
        _wait(browser, lambda d: detail_row() is None)
        # the last card of the first page, then on to the second page
        browser.find_element(By.CSS_SELECTOR, '.card[data-row="47"]').click()
        wait_row(47)
        press("j")
        wait_row(48)
        assert browser.find_element(By.ID, "page").text.strip() == "49-96"
        press("k")
        wait_row(47)
        assert browser.find_element(By.ID, "page").text.strip() == "1-48"
        # the whole selection: 50 samples with SMPL, over two pages
        Select(browser.find_element(By.ID, "f-has_smpl")).select_by_value("1")
        browser.find_element(By.ID, "apply").click()
        _wait(browser, lambda d: d.find_element(By.ID, "total").text == "50")
        browser.find_element(By.ID, "sel-reason").send_keys("bulk")
        browser.find_element(By.ID, "mark-selection").click()
        _wait(browser, lambda d: _alert(d) is not None)
        alert = browser.switch_to.alert
        assert "mark all 50 selected samples" in alert.text and "every page" in alert.text
        alert.dismiss()  # nothing is written
        _wait(browser, lambda d: _alert(d) is None)
        assert resolve_marks(path).rows == {}
        browser.find_element(By.ID, "mark-selection").click()
        _wait(browser, lambda d: _alert(d) is not None)
        browser.switch_to.alert.accept()
        _wait(browser, lambda d: d.find_element(By.ID, "status").text == "50 marked")
        rows = resolve_marks(path, open_store(path)).rows
        assert sorted(rows) == list(range(0, 100, 2)) and {m["reason"] for m in rows.values()} == {"bulk"}
        _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card.marked")) == 48)
        browser.find_element(By.ID, "unmark-selection").click()
        _wait(browser, lambda d: _alert(d) is not None)
        assert "unmark 50 marked samples of the 50 selected" in browser.switch_to.alert.text
        browser.switch_to.alert.accept()
        _wait(browser, lambda d: d.find_element(By.ID, "status").text == "50 unmarked")
        assert resolve_marks(path).rows == {}
    finally:
        server.shutdown()
        server.server_close()


def _alert(driver):
    from selenium.common.exceptions import NoAlertPresentException

    try:
        return driver.switch_to.alert.text
    except NoAlertPresentException:
        return None


def test_smplx_sample_in_the_browser(browser, tmp_path):
    """A PROX sample (SMPL-X only, PCA hands) opened on the page: the view has its SMPL-X mesh,
    named under the picture, at the pixels the server drew it."""
    from selenium.webdriver.common.by import By

    from hmr.review.index import ReviewIndex
    from hmr.review.server import serve_in_thread
    from tests.fixtures.converters_2d import convert
    from tests.fixtures.prox import write_prox

    write_prox(tmp_path / "raw", "train", n=1)
    result, _ = convert("prox", tmp_path / "raw", tmp_path / "out", "train")
    server, _ = serve_in_thread(ReviewIndex([result.store]), 0)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        browser.get(url)
        _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#grid .card")) == 1)
        browser.find_element(By.CSS_SELECTOR, '.card[data-row="0"]').click()
        _wait(browser, lambda d: d.execute_script("const i=document.getElementById('view');"
                                                  "return i && i.complete && i.naturalWidth > 0"), timeout=180)
        assert browser.find_element(By.ID, "mesh-model").text == "mesh: SMPL-X"
        assert not browser.find_elements(By.ID, "mesh-note")
        with_mesh, without = (_png(f"{url}view/0/0.png{q}") for q in ("", "?mesh=0"))
        diff = np.abs(with_mesh.astype(int) - without.astype(int)).sum(axis=2)
        assert (diff > 20).sum() > 20000
        y, x = np.unravel_index(np.argmax(diff), diff.shape)
        assert browser.execute_script(PIXEL_JS, int(x), int(y)) == with_mesh[y, x].tolist()
    finally:
        server.shutdown()
        server.server_close()
