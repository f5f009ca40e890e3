"""Driving python -m avqa.demo's page in a real browser: Debian's headless Chromium through Selenium.

Used by tests/test_demo.py, and by hand to make the README's screenshot (a server must be running)::

    python tests/demo_browser.py http://127.0.0.1:PORT/ "QUESTION" figs/demo.png [CLIP [SECOND]]

No browser is ever downloaded: the system's chromium and chromedriver are used, or the test skips.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser")
WAIT = 60   # seconds for the page to answer (the first question on a clip computes its features)


def browser_problem() -> str | None:
    """Why no browser test can run here (None: it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements-test.txt)"
    if not any(shutil.which(b) for b in BROWSERS):
        return "no chromium here (apt-get install chromium chromium-driver; .ci/run does it where it can)"
    if not shutil.which("chromedriver"):
        return "no chromedriver here (apt-get install chromium-driver; .ci/run does it where it can)"
    return None


def open_browser(width: int = 1400, height: int = 1250):
    """Headless Chromium (the system's), driven by the system's chromedriver."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager never fetches a browser or a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = next(shutil.which(b) for b in BROWSERS if shutil.which(b))
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def wait_for(driver, condition, timeout: float = WAIT):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def open_page(driver, url: str) -> None:
    driver.get(url)
    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.ready === '1'"), 20)


def pick_clip(driver, which: int | str = 0) -> str:
    """Click the gallery's clip ``which`` (its place, or its name); its name."""
    from selenium.webdriver.common.by import By
    clips = driver.find_elements(By.CSS_SELECTOR, "#clips .clip")
    clip = clips[which] if isinstance(which, int) else next(c for c in clips if c.get_attribute("title") == which)
    clip.click()
    return clip.get_attribute("title")


def ask(driver, question: str) -> dict:
    """Type ``question``, press Ask, and read what the page shows: the answer and the top 5, or the error."""
    from selenium.webdriver.common.by import By
    box = driver.find_element(By.ID, "question")
    box.clear()
    box.send_keys(question)
    driver.execute_script("document.getElementById('answer').textContent = '';"
                          "document.getElementById('error').textContent = '';")
    driver.find_element(By.ID, "ask").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "answer").text or d.find_element(By.ID, "error").text)
    error = driver.find_element(By.ID, "error")
    if error.is_displayed() and error.text:
        return {"error": error.text}
    top = [(e.get_attribute("data-answer"), float(e.get_attribute("data-probability")))
           for e in driver.find_elements(By.CSS_SELECTOR, "#top5 .top-answer")]
    return {"answer": driver.find_element(By.ID, "answer").text, "top": top,
            "question_type": driver.find_element(By.ID, "qtype").text,
            "strip_cells": len(driver.find_elements(By.CSS_SELECTOR, "#strip-sound div")),
            "seconds_shown": len(driver.find_elements(By.CSS_SELECTOR, "#looked .second img")),
            "heat_shown": driver.find_element(By.ID, "heat").is_displayed(),
            "notes": [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#notes li")]}


def upload(driver, path: Path) -> str:
    """Upload a file with the page's file input; the error it shows, or '' once the clip is ready."""
    from selenium.webdriver.common.by import By
    driver.execute_script("document.getElementById('error').textContent = '';"
                          "document.getElementById('upload-status').textContent = '';")
    driver.find_element(By.ID, "upload").send_keys(str(Path(path).resolve()))
    wait_for(driver, lambda d: d.find_element(By.ID, "error").text or "ready" in d.find_element(By.ID, "upload-status").text)
    return driver.find_element(By.ID, "error").text


def main(argv: list[str]) -> int:
    url, question, screenshot = argv[0], argv[1], Path(argv[2])
    clip = argv[3] if len(argv) > 3 else "0"
    clip = int(clip) if clip.isdigit() and len(clip) < 4 else clip
    second = int(argv[4]) if len(argv) > 4 else 2   # the second whose heat map is over the video
    driver = open_browser(height=1400)
    try:
        open_page(driver, url)
        print("clip:", pick_clip(driver, clip))
        print(ask(driver, question))
        driver.execute_script(f"document.getElementById('video').currentTime = {second} + 0.5;")
        wait_for(driver, lambda d: d.execute_script(f"return document.getElementById('heat').dataset.k === '{second}'"),
                 10)
        driver.save_screenshot(str(screenshot))
        print("screenshot:", screenshot)
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
