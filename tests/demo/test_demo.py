"""The H5 demo: off by default; when on, two browsers chat both ways through it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Server, TestDatabase

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


@pytest.fixture(scope="module")
async def demo_db(backend: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[TestDatabase]:
    db = await TestDatabase.create(backend, tmp_path_factory.mktemp(f"demo-{backend}"))
    yield db
    await db.drop()


@pytest.fixture(scope="module")
def demo_server(demo_db: TestDatabase, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Server]:
    srv = Server.start(demo_db, tmp_path_factory.mktemp("demo-server"), demo_enabled="true")
    yield srv
    srv.stop()


def test_the_demo_is_off_by_default(server: Server) -> None:
    """Without PARLEY_DEMO_ENABLED neither the page nor the token route exists."""
    assert httpx.get(server.base_url + "/demo").status_code == 404
    reply = httpx.post(server.base_url + "/demo/session", json={"user": "a", "peer": "b"})
    assert reply.status_code == 404


async def join(browser: Any, server: Server, me: str, peer: str, outside: list[str]) -> Any:
    context = await browser.new_context()

    async def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server.base_url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_this_server)
    page = await context.new_page()
    await page.goto(server.base_url + "/demo")
    await page.fill("#me", me)
    await page.fill("#peer", peer)
    await page.click("#join")
    await page.wait_for_selector("#chat:not([hidden])", timeout=15_000)
    return page


async def say(page: Any, text: str) -> None:
    await page.fill("#text", text)
    await page.click("#send")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
async def test_two_browsers_chat_both_ways(demo_server: Server, backend: str) -> None:
    """Alice and Bob, each in their own browser context, see each other's messages."""
    from playwright.async_api import async_playwright

    outside: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            alice = await join(browser, demo_server, "alice", "bob", outside)
            bob = await join(browser, demo_server, "bob", "alice", outside)
            await say(alice, "Hello Bob")
            await bob.wait_for_selector("#log li:has-text('Hello Bob')", timeout=10_000)
            await say(bob, "Hi Alice")
            await alice.wait_for_selector("#log li:has-text('Hi Alice')", timeout=10_000)

            ARTIFACTS.mkdir(exist_ok=True)
            await alice.screenshot(path=ARTIFACTS / f"demo-alice-{backend}.png")
            await bob.screenshot(path=ARTIFACTS / f"demo-bob-{backend}.png")
            assert await alice.locator("#log li").all_inner_texts() == ["Hello Bob", "Hi Alice"]
            assert await bob.locator("#log li").all_inner_texts() == ["Hello Bob", "Hi Alice"]
        finally:
            await browser.close()
    assert outside == []
