"""The browse page in a real browser: headless Chromium (Debian's chromium + chromium-driver,
installed by .ci/run) against a real `semhash serve` process. Pick an indexed image, upload one,
change k and the radius; the thumbnails, labels and Hamming distances follow. The test writes a
screenshot to tests/screenshots/browse.png.

Skipped where Chromium is not installed, unless SEMHASH_REQUIRE_BROWSER=1 (CI).
"""

import os
import shutil
from pathlib import Path

import pytest
from servers import free_port, png_bytes, start_server

from semhash.hashing.methods import make_hasher
from semhash.index_store.build import build_index

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOTS = Path(__file__).parent / "screenshots"


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        if os.environ.get("SEMHASH_REQUIRE_BROWSER") == "1":
            pytest.fail("SEMHASH_REQUIRE_BROWSER=1 but chromium / chromedriver are not installed")
        pytest.skip("headless Chromium not installed (apt install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory, digits):
    folder = tmp_path_factory.mktemp("browse")
    model = make_hasher("itq", bits=16).fit(digits[0]).save(folder / "d16.semhash")
    build_index(folder / "items.db", model, digits[0], name="digits")
    port = free_port()
    proc = start_server(str(folder / "items.db"), port, {**os.environ, "XDG_CACHE_HOME": str(folder / "cache")})
    yield folder, f"http://127.0.0.1:{port}/"
    proc.terminate()
    proc.wait(timeout=30)


def cards(driver, css):
    return driver.find_elements("css selector", css)


def wait_for(driver, condition, what, timeout=20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d), message=what)


def set_number(driver, element_id, value):
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element("id", element_id)
    field.clear()
    field.send_keys(str(value), Keys.TAB)  # TAB fires the change event the page listens to


def loaded_images(driver, css) -> int:
    return driver.execute_script(
        f"return [...document.querySelectorAll('{css} img')].filter(i => i.complete && i.naturalWidth > 0).length"
    )


def test_pick_upload_and_change_k_and_radius(browser, server, digits):
    folder, url = server
    browser.get(url)
    wait_for(browser, lambda d: len(cards(d, "#samples .sample")) == 12, "12 items offered as queries")
    assert "digits (1,500 items, 16 bits)" in browser.find_element("id", "index").text

    # pick an indexed item: it comes back first, at distance 0, with 10 neighbours in all
    first = cards(browser, "#samples .sample")[0]
    key = first.get_attribute("data-key")
    first.click()
    wait_for(browser, lambda d: len(cards(d, "#results .hit")) == 10, "10 neighbours")
    hits = cards(browser, "#results .hit")
    distances = [int(h.text.split("d=")[1].split()[0]) for h in hits]
    assert distances == sorted(distances) and distances[0] == 0
    assert key in [h.find_element("css selector", ".key").text for h in hits if "d=0" in h.text]
    wait_for(browser, lambda d: loaded_images(d, "#results") == 10, "thumbnails of every neighbour")

    # fewer neighbours, then only those within radius 1
    set_number(browser, "k", 4)
    wait_for(browser, lambda d: len(cards(d, "#results .hit")) == 4, "4 neighbours after k = 4")
    set_number(browser, "k", 50)
    set_number(browser, "radius", 1)
    wait_for(browser, lambda d: "within radius 1" in d.find_element("id", "status").text, "radius applied")
    assert all(int(h.text.split("d=")[1].split()[0]) <= 1 for h in cards(browser, "#results .hit"))

    # upload an image file
    png = folder / "query.png"
    png.write_bytes(png_bytes(digits[1].x[0, 0]))
    set_number(browser, "radius", "")
    browser.find_element("id", "file").send_keys(str(png))
    wait_for(
        browser,
        lambda d: "query.png" in d.find_element("id", "query").text and len(cards(d, "#results .hit")) == 50,
        "50 neighbours of the uploaded image",
    )
    labels = [h.text.split()[0] for h in cards(browser, "#results .hit")[:10]]
    assert labels.count(str(int(digits[1].labels[0]))) >= 5  # mostly the same digit as the query

    SCREENSHOTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / "browse.png"))

    # a bad upload shows the server's message instead of results
    bad = folder / "bad.png"
    bad.write_bytes(b"not an image")
    browser.find_element("id", "file").send_keys(str(bad))
    wait_for(browser, lambda d: "not a readable image" in d.find_element("id", "status").text, "the error shown")
    assert cards(browser, "#results .hit") == []
