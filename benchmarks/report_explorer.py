"""How fast a report page's sample explorer opens and draws, in headless Chromium (Debian's, via Playwright).

    .venv/bin/python benchmarks/report_explorer.py runs/demo/report.html [--samples 20]

Prints the page's size, the time from navigation to the page being ready and from the explorer's script
start to its table being ready (``open``), and the time from a click on a sample to its view and matrix
drawn (``draw``; median and maximum over ``--samples`` samples spread over the table), with whether the page
asked the network for anything.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    page_path = args.page.resolve()
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=args.chromium,
            headless=True,
            args=ARGS,
            viewport={"width": 1200, "height": 900},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_function(
                "window.speechgapExplorer && window.speechgapExplorer.timings.open_ms !== null"
            )
            timings = page.evaluate("window.speechgapExplorer.timings")
            ready_ms = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
            rows = page.eval_on_selector_all(
                "#sgx-table tr.sgx-row", "rows => rows.map(r => r.dataset.index)"
            )
            step = max(1, len(rows) // args.samples)
            draws = []
            for index in rows[::step][: args.samples]:
                page.locator(f"#sgx-table tr.sgx-row[data-index='{index}']").click()
                page.wait_for_function(f"document.getElementById('sgx-view').dataset.index === '{index}'")
                draws.append(page.evaluate("window.speechgapExplorer.timings.last_draw_ms"))
        finally:
            context.close()
    outside = [url for url in requests if url != page_path.as_uri() and not url.startswith("data:")]
    print(f"{page_path}: {page_path.stat().st_size / 1e6:.2f} MB, {len(rows)} samples")
    print(f"page ready {ready_ms:.0f} ms after navigation; explorer open {timings['open_ms']:.0f} ms")
    print(
        f"sample view draw: median {statistics.median(draws):.1f} ms, max {max(draws):.1f} ms over {len(draws)} samples"
    )
    print(f"network requests besides the page and data: URLs: {len(outside)}")


if __name__ == "__main__":
    main()
