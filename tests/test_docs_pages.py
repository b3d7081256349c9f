"""Swagger UI and ReDoc render in a real headless Chromium with every outside host blocked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import Server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed")


async def _render(server: Server, path: str, selector: str, backend: str) -> tuple[int, list]:
    from playwright.async_api import Route, async_playwright

    outside: list[str] = []

    async def only_loopback(route: Route) -> None:
        if route.request.url.startswith(server.base_url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page()
            await page.route("**/*", only_loopback)
            await page.goto(server.base_url + path)
            await page.wait_for_selector(selector, timeout=15_000)
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=ARTIFACTS / f"{path.strip('/')}-{backend}.png")
            return await page.locator(selector).count(), outside
        finally:
            await browser.close()


async def test_swagger_ui_lists_every_operation_offline(server: Server, backend: str) -> None:
    """/docs renders one block per operation without fetching anything from another host."""
    count, outside = await _render(server, "/docs", ".opblock", backend)
    assert count >= 20 and outside == []


async def test_redoc_renders_the_spec_offline(server: Server, backend: str) -> None:
    """/redoc renders the operations (not its error page) without another host."""
    count, outside = await _render(server, "/redoc", "[data-section-id^='operation/']", backend)
    assert count >= 20 and outside == []
