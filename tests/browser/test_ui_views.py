"""Each view of the page in headless chromium against the live service (``tests/browser/conftest.py``), at
1280x800 and at a phone's 390x844: filled in as a user would, the result read from the DOM and checked against
what the API answers. Screenshots of each view at 1280x800 go to ``docs/screenshots/<view>.png``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from selenium.webdriver import ActionChains, Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
TEXTS = [
    "The cat sits on the mat.",
    "Die Katze sitzt auf der Matte.",
    "Le chat est assis sur le tapis.",
    "The stock market fell sharply today.",
    "Der Aktienmarkt ist heute stark gefallen.",
]
SENTENCE = "The cat sat on the mat."
SCROLL = "const e = arguments[0] && document.getElementById(arguments[0]); e ? e.scrollIntoView() : scrollTo(0, 0);"
WIDTHS = "const e = arguments[0]; return [e.getBoundingClientRect().width, e.parentElement.clientWidth];"
T = TypeVar("T")


@pytest.fixture(params=list(VIEWPORTS))
def size(request: pytest.FixtureRequest, browser: Chrome) -> str:
    """The viewport of the test, emulated exactly (a phone's is a mobile one)."""
    width, height = VIEWPORTS[request.param]
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": request.param == "phone"}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return str(request.param)


def wait(browser: Chrome, probe: Callable[[Chrome], T], what: str, errors: str = "", timeout: float = 60) -> T:
    """``probe``'s first truthy answer; fails naming ``what`` after ``timeout`` seconds, or at once with the
    message the page shows in the error box ``errors`` (an element id) if it shows one first."""

    def probe_or_error(driver: Chrome) -> T:
        box = driver.find_element(By.ID, errors) if errors else None
        assert box is None or not box.is_displayed(), f"{what}: the page shows an error: {box.text}"
        return probe(driver)

    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(probe_or_error, f"{what}: not seen in {timeout} s")


def by_id(browser: Chrome, element_id: str) -> WebElement:
    return browser.find_element(By.ID, element_id)


def all_of(browser: Chrome, css: str) -> list[WebElement]:
    return browser.find_elements(By.CSS_SELECTOR, css)


def open_view(browser: Chrome, live: str, view: str, key: str) -> None:
    """Load the page afresh on ``view``, type ``key`` into the key field, and wait for the model pickers to fill."""
    browser.get("about:blank")  # a URL differing only in its #fragment would not reload the page
    browser.get(f"{live}#{view}")
    field = by_id(browser, "api-key")
    field.clear()
    field.send_keys(key, Keys.TAB)
    assert by_id(browser, f"view-{view}").is_displayed()
    wait(
        browser,
        lambda b: b.execute_script("return document.querySelector('#compare-model option[value]')"),
        "models",
        "global-error",
    )


def type_into(browser: Chrome, element_id: str, text: str) -> None:
    field = by_id(browser, element_id)
    field.clear()
    field.send_keys(text)


def shown_error(browser: Chrome, box: str) -> str:
    """The text of an error box once it shows."""
    return str(wait(browser, lambda b: by_id(b, box).is_displayed() and by_id(b, box).text, f"an error in #{box}"))


def api(live: str, key: str, method: str, path: str, body: Any = None) -> Any:
    """The same call the page makes, straight to the service."""
    url = live.removesuffix("ui/") + path
    response = httpx.request(method, url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert response.status_code < 300, response.text
    return response.json()


def check_layout(browser: Chrome, size: str, view: str, top: str | None = None, shot: bool = True) -> None:
    """No sideways scrolling of the page at either width; at 1280x800 the view's screenshot is written, scrolled
    to the element ``top`` names (None: the top of the page)."""
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{view} at {size} is {overflow}px wider than the viewport"
    if size == "desktop" and shot:
        browser.execute_script(SCROLL, top)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOTS / f"{view}.png"))


def test_tab_order_reaches_the_key_the_tabs_and_the_buttons(
    browser: Chrome, live: str, admin_key: str, size: str
) -> None:
    open_view(browser, live, "compare", admin_key)
    browser.refresh()  # the key stays (sessionStorage); Tab now starts from the top of the page
    wait(browser, lambda b: by_id(b, "api-key").get_attribute("value") == admin_key, "the kept key")
    order = []
    for _ in range(12):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        order.append(browser.execute_script("return document.activeElement.id"))
    wanted = ["api-key", "key-forget", "tab-compare", "tab-mine", "tab-senses", "tab-models", "compare-texts"]
    assert order[: len(wanted)] == wanted, order
    assert order.index("compare-model") < order.index("compare-run"), order
    # The arrow keys move between tabs, Enter on a focused tab opens its view.
    by_id(browser, "tab-compare").send_keys(Keys.ARROW_RIGHT)
    assert browser.execute_script("return document.activeElement.id") == "tab-mine"
    assert by_id(browser, "view-mine").is_displayed() and not by_id(browser, "view-compare").is_displayed()
    by_id(browser, "tab-models").send_keys(Keys.ENTER)
    assert by_id(browser, "tab-models").get_attribute("aria-selected") == "true"
    assert by_id(browser, "view-models").is_displayed()


def test_compare_draws_the_cosine_heatmap(browser: Chrome, live: str, admin_key: str, size: str) -> None:
    open_view(browser, live, "compare", admin_key)
    type_into(browser, "compare-texts", "\n".join(TEXTS))
    assert Select(by_id(browser, "compare-model")).first_selected_option.get_attribute("value") == "tiny:2"
    by_id(browser, "compare-run").click()
    n = len(TEXTS)
    cells = wait(
        browser,
        lambda b: len(all_of(b, ".heatmap .cell")) == n * n and all_of(b, ".heatmap .cell"),
        "cells",
        "compare-error",
    )
    shown = {(int(c.get_attribute("data-i")), int(c.get_attribute("data-j"))): c for c in cells}
    assert set(shown) == {(i, j) for i in range(n) for j in range(n)}
    assert [shown[i, i].text for i in range(n)] == ["1.00"] * n
    vectors = [d["embedding"] for d in api(live, admin_key, "POST", "v1/embeddings", {"input": TEXTS})["data"]]
    for (i, j), cell in shown.items():
        expected = sum(a * b for a, b in zip(vectors[i], vectors[j], strict=True))
        assert float(cell.get_attribute("data-value")) == pytest.approx(expected, abs=1e-6)
        assert cell.text == f"{expected:.2f}"
    labels = [t.text for t in all_of(browser, ".heatmap .row-label")]
    assert labels == [f"{i + 1}. {text}" for i, text in enumerate(TEXTS)]  # all within the 42 characters shown
    check_layout(browser, size, "compare")


def rows(browser: Chrome) -> list[list[str]]:
    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in all_of(browser, "#mine-result tbody tr")]


def test_mine_lists_pairs_the_slider_filters_and_the_tsv_holds(
    browser: Chrome, live: str, admin_key: str, size: str, downloads: Path
) -> None:
    open_view(browser, live, "mine", admin_key)
    src, tgt = by_id(browser, "mine-src").get_attribute("value"), by_id(browser, "mine-tgt").get_attribute("value")
    by_id(browser, "mine-run").click()
    wait(browser, rows, "mined pairs", "mine-error")
    body = {"src": {"texts": src.split("\n")}, "tgt": {"texts": tgt.split("\n")}, "k": 4}
    pairs = api(live, admin_key, "POST", "v1/bitext/mine", body)["pairs"]
    assert rows(browser) == [[f"{p['score']:.4f}", f"{p['cosine']:.4f}", p["src_text"], p["tgt_text"]] for p in pairs]
    assert by_id(browser, "mine-count").text.startswith(f"{len(pairs)} of {len(pairs)} pairs")
    assert len(all_of(browser, ".histogram .bin")) == 20
    # End puts the threshold on the best score: only the pairs scoring that high are left, in the table and the TSV.
    by_id(browser, "mine-threshold").send_keys(Keys.END)
    best = max(p["score"] for p in pairs)
    kept = [p for p in pairs if p["score"] >= best - 1e-9]
    assert len(rows(browser)) == len(kept) < len(pairs)
    assert all_of(browser, ".histogram .bin.below")
    for old in downloads.glob("*.tsv"):
        old.unlink()
    by_id(browser, "mine-download").click()
    tsv = wait(browser, lambda _: next(iter(downloads.glob("mined-pairs*.tsv")), None), "the TSV download")
    lines = tsv.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["src_id", "tgt_id", "score", "cosine", "src_text", "tgt_text"]
    assert [line.split("\t")[4:] for line in lines[1:]] == [[p["src_text"], p["tgt_text"]] for p in kept]
    check_layout(browser, size, "mine", shot=False)


def test_mine_past_the_request_limit_runs_as_a_job_with_progress(
    browser: Chrome, live: str, admin_key: str, size: str
) -> None:
    # 2 x 14 texts of ~45 tokens: past the live server's 600 tokens a request, so the page submits a job.
    src = [f"Sentence number {i} is about the cat on the mat." for i in range(14)]
    tgt = [f"Satz Nummer {i} handelt von der Katze auf der Matte." for i in range(14)]
    open_view(browser, live, "mine", admin_key)
    type_into(browser, "mine-src", "\n".join(src))
    type_into(browser, "mine-tgt", "\n".join(tgt))
    by_id(browser, "mine-run").click()
    job = by_id(browser, "mine-job")
    wait(
        browser,
        lambda b: job.get_attribute("data-state") == "succeeded" and rows(b),
        "the job's pairs",
        "mine-error",
        120,
    )
    assert by_id(browser, "mine-progress").get_attribute("value") == "1"
    assert "sent as a mining job" in by_id(browser, "mine-result").text
    record = api(live, admin_key, "GET", f"v1/bitext/jobs/{job.get_attribute('data-job-id')}")
    assert record["state"] == "succeeded" and record["src"]["lines"] == len(src)
    assert len(rows(browser)) == record["counts"]["pairs"] > 0
    assert {r[2] for r in rows(browser)} <= set(src) and {r[3] for r in rows(browser)} <= set(tgt)
    assert by_id(browser, "mine-cancel").is_displayed() is False
    check_layout(browser, size, "mine", top="mine-run")


def test_senses_bars_and_a_waterfall_that_adds_up_to_the_logit(
    browser: Chrome, live: str, admin_key: str, size: str
) -> None:
    open_view(browser, live, "senses", admin_key)
    options = [o.get_attribute("value") for o in Select(by_id(browser, "senses-model")).options]
    assert options == ["tiny-backpack:1"]
    type_into(browser, "senses-input", SENTENCE)
    type_into(browser, "senses-next", "and")
    by_id(browser, "senses-run").click()
    wait(browser, lambda b: all_of(b, ".waterfall .total"), "the contribution chart", "senses-error")
    body = {"input": SENTENCE, "next_word": "and", "top_contributions": 1000}
    answer = api(live, admin_key, "POST", "v1/senses", body)
    tokens, logit = answer["tokens"], answer["next_word"]["logit"]
    assert len(all_of(browser, ".token")) == len(tokens)
    bars = all_of(browser, ".sense-bar")
    weights = [s["weight"] for t in tokens for s in t["senses"]]
    assert [float(b.get_attribute("data-weight")) for b in bars] == pytest.approx(weights, abs=1e-12)
    # Bars are scaled to the largest weight: that one fills its track.
    widest = bars[max(range(len(bars)), key=lambda i: weights[i])]
    width, track = browser.execute_script(WIDTHS, widest)
    assert width == pytest.approx(track, abs=1)
    parts = [float(p.get_attribute("data-value")) for p in all_of(browser, ".waterfall .part")]
    total = float(all_of(browser, ".waterfall .total")[0].get_attribute("data-total"))
    assert total == pytest.approx(logit, abs=1e-12)
    assert math.fsum(parts) == pytest.approx(logit, rel=1e-4, abs=1e-4)
    assert len(parts) == 13  # the 12 largest terms, then the other terms summed
    assert float(by_id(browser, "senses-logit").get_attribute("data-logit")) == logit
    check_layout(browser, size, "senses")


def served(browser: Chrome, name: str) -> str:
    """The served version the models table shows for ``name``."""
    return str(
        browser.find_element(By.CSS_SELECTOR, f'#models-list tr[data-name="{name}"]').get_attribute("data-version")
    )


def test_models_evaluation_and_a_promote_rollback_round_trip(
    browser: Chrome, live: str, admin_key: str, evaluation: dict[str, dict[str, float]], size: str
) -> None:
    open_view(browser, live, "models", admin_key)
    wait(browser, lambda b: all_of(b, "#models-list tbody tr"), "the models table", "models-error")
    listed = api(live, admin_key, "GET", "v1/models")["data"]
    assert {tr.get_attribute("data-name") for tr in all_of(browser, "#models-list tbody tr")} == {
        "tiny",
        "tiny-backpack",
    }
    assert served(browser, "tiny") == "2" and "production → 2" in by_id(browser, "models-list").text
    marked = [
        td.find_element(By.XPATH, "..").get_attribute("data-name") for td in all_of(browser, "td.default") if td.text
    ]
    assert marked == [c["name"] for c in listed if c.get("default")] == ["tiny"]
    browser.find_element(By.CSS_SELECTOR, '#models-list tr[data-name="tiny"] button').click()
    wait(browser, lambda b: by_id(b, "model-detail").is_displayed(), "the model's card", "models-error")
    assert by_id(browser, "detail-title").text == "tiny:2"
    bars = {
        (b.get_attribute("data-group"), b.get_attribute("data-metric")): float(b.get_attribute("data-value"))
        for b in all_of(browser, ".bars .bar")
    }
    assert bars == {
        (task, m): v for task, metrics in evaluation.items() for m, v in metrics.items() if m != "threshold"
    }
    check_layout(browser, size, "models", top="models-list")
    # Version 1 has no evaluation to compare: the release gate refuses it, and the page says so.
    Select(by_id(browser, "release-version")).select_by_value("1")
    by_id(browser, "release-promote").click()
    refused = shown_error(browser, "detail-error")
    assert "HTTP 409" in refused and "release_gate_refused" in refused
    Select(by_id(browser, "release-version")).select_by_value("3")
    type_into(browser, "release-alias", "production")
    by_id(browser, "release-promote").click()
    result = by_id(browser, "release-result")
    wait(browser, lambda b: "serving 3" in result.text and served(b, "tiny") == "3", "the promotion", "detail-error")
    assert result.text == "tiny production: 2 → 3; serving 3"
    assert [c["version"] for c in api(live, admin_key, "GET", "v1/models")["data"] if c["name"] == "tiny"] == [3]
    assert by_id(browser, "detail-title").text == "tiny:3"
    by_id(browser, "release-rollback").click()
    wait(browser, lambda b: "serving 2" in result.text and served(b, "tiny") == "2", "the rollback", "detail-error")
    assert result.text == "tiny production: 3 → 2; serving 2"
    assert by_id(browser, "detail-title").text == "tiny:2"


def test_wrong_key_missing_scope_and_no_network_are_shown(
    browser: Chrome, live: str, read_key: str, admin_key: str, size: str
) -> None:
    browser.get(f"{live}#compare")
    type_into(browser, "api-key", "not-a-key")
    by_id(browser, "api-key").send_keys(Keys.TAB)
    assert "HTTP 401" in shown_error(browser, "global-error")
    assert "unknown API key" in by_id(browser, "global-error").text
    assert browser.execute_script("return sessionStorage.getItem('xalign.apiKey')") == "not-a-key"
    assert browser.execute_script("return localStorage.length + document.cookie.length") == 0
    assert "not-a-key" not in browser.current_url
    by_id(browser, "compare-run").click()
    error = shown_error(browser, "compare-error")
    assert "HTTP 401" in error and "unknown API key" in error
    assert by_id(browser, "compare-error").find_element(By.CLASS_NAME, "error-code").text in {
        "invalid_api_key",
        "authentication_error",
    }
    # A read key may look but not promote: the 403 names the scope.
    open_view(browser, live, "models", read_key)
    wait(browser, lambda b: all_of(b, '#models-list tr[data-name="tiny"] button'), "the models table")[0].click()
    wait(browser, lambda b: by_id(b, "model-detail").is_displayed(), "the model's card")
    by_id(browser, "release-promote").click()
    assert (
        "HTTP 403" in shown_error(browser, "detail-error") and "read scope only" in by_id(browser, "detail-error").text
    )
    # No network: the failed fetch is shown, not swallowed.
    open_view(browser, live, "compare", admin_key)
    browser.execute_cdp_cmd("Network.enable", {})
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
    try:
        by_id(browser, "compare-run").click()
        error = shown_error(browser, "compare-error")
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", offline | {"offline": False})
    assert "no answer" in error and "network_error" in error
