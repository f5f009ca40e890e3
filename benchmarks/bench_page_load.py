"""How long does a page take to open, until it can be used? Headless Chromium, a fresh profile each time.

    python benchmarks/bench_page_load.py http://127.0.0.1:PORT/ [URL ...] [--repeats 5]

For each URL: a new browser (its start not counted) loads the page and waits until it is usable: the
demo's page says so itself (``document.body.dataset.ready``, set once its catalog is drawn); any other
page when a button with the text "Ask" is in it (a Gradio page draws its components with JavaScript
after the load event). Printed: median, best and worst seconds, and the bytes the page transferred.
docs/demo.md compares python -m avqa.demo with the same inputs and outputs in Gradio
(benchmarks/gradio_page.py) this way.
"""
import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from avqa.machine import describe_machine

_spec = importlib.util.spec_from_file_location("demo_browser", ROOT / "tests" / "demo_browser.py")
browser = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(browser)

USABLE = ("return document.body && (document.body.dataset.ready === '1' || [...document.querySelectorAll('button')]"
          ".some(b => b.textContent.trim() === 'Ask'))")
BYTES = ("return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
         ".reduce((n, e) => n + (e.transferSize || e.encodedBodySize || 0), 0)")


def load_once(url: str) -> tuple[float, int]:
    driver = browser.open_browser()
    try:
        t0 = time.perf_counter()
        driver.get(url)
        browser.wait_for(driver, lambda d: d.execute_script(USABLE), 60)
        return time.perf_counter() - t0, int(driver.execute_script(BYTES))
    finally:
        driver.quit()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("urls", nargs="+")
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    problem = browser.browser_problem()
    if problem:
        raise SystemExit(problem)
    print(f"machine: {describe_machine()}", flush=True)
    for url in a.urls:
        runs = [load_once(url) for _ in range(a.repeats)]
        times = [t for t, _ in runs]
        print(f"  {url}: usable after median {statistics.median(times):.3f} s (best {min(times):.3f}, worst "
              f"{max(times):.3f}; {a.repeats} fresh browsers), {runs[-1][1] / 1024:.0f} KiB transferred")
    return 0


if __name__ == "__main__":
    sys.exit(main())
