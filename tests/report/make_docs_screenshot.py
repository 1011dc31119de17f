"""Regenerate docs/report.png: the fixture's HTML report in headless Chromium.

Run: .venv/bin/python tests/report/make_docs_screenshot.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from tests.report.chromium import Chromium
from tests.report.report_fixtures import load_fixture
from wsshadow.replay.report.render import write_report

ROOT = Path(__file__).resolve().parents[2]


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        page = write_report(load_fixture(), Path(tmp) / "report.html")
        async with Chromium(Path(tmp), width=1360, height=900) as browser:
            await browser.navigate(page.as_uri(), "document.documentElement.dataset.ready === '1'")
            # Show one divergent session opened on its aligned streams, equal rows hidden.
            await browser.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1360, "height": 3000, "deviceScaleFactor": 1, "mobile": False},
            )
            height = await browser.evaluate("""(() => {
                document.documentElement.style.overflow = 'hidden';
                const sig = document.getElementById('f-signature');
                sig.value = 'type_changed /ws/isolated agent_completed data.result.duration_ms';
                sig.dispatchEvent(new Event('change'));
                document.querySelector('tr.session[data-session="s-iso-01"] button').click();
                const rows = document.querySelectorAll('tr.detail-row .srow:not(.head)');
                const last = rows[Math.min(rows.length - 1, 1)];
                return Math.ceil(last.getBoundingClientRect().bottom + window.scrollY + 1);
            })()""")
            await browser.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1360, "height": int(height), "deviceScaleFactor": 1, "mobile": False},
            )
            await browser.screenshot(ROOT / "docs" / "report.png")
            assert browser.problems() == [], browser.problems()
    print(f"wrote {ROOT / 'docs' / 'report.png'}")


if __name__ == "__main__":
    asyncio.run(main())
