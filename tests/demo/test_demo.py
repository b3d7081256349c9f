"""The H5 demo: off by default; when on, people chat through it in real browsers.

Each browser test drives Debian's headless Chromium with Playwright against a Parley it
started on a loopback port, with every other host blocked, and saves a screenshot of each
step under test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
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
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}
# How long a page may take to show what a push or a sync brings, in milliseconds.
SHOWN_MS = 10_000

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="Debian's chromium is not installed")


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


def names(*people: str) -> list[str]:
    """Names no other test uses: every test shares the one demo app."""
    tag = uuid.uuid4().hex[:6]
    return [f"{p}-{tag}" for p in people]


class Browser:
    """One headless Chromium; each person gets a context of their own."""

    def __init__(self, browser: Any, server: Server, backend: str, test: str) -> None:
        self.browser = browser
        self.server = server
        self.backend = backend
        self.test = test
        self.outside: list[str] = []
        self.shots = 0

    async def person(self, name: str, **context_options: Any) -> Any:
        """A new browser context signed in as `name`, on the conversation list."""
        context = await self.browser.new_context(**context_options)

        async def only_this_server(route: Any) -> None:
            if route.request.url.startswith(self.server.base_url):
                await route.continue_()
            else:
                self.outside.append(route.request.url)
                await route.abort()

        await context.route("**/*", only_this_server)
        page = await context.new_page()
        await page.goto(self.server.base_url + "/demo")
        await page.fill("#me", name)
        await page.click("#join")
        await page.wait_for_selector("#home:not([hidden])", timeout=SHOWN_MS)
        return page

    async def shot(self, page: Any, step: str) -> None:
        """Save what the page shows now as test-artifacts/demo-<test>-<backend>-NN-<step>."""
        ARTIFACTS.mkdir(exist_ok=True)
        self.shots += 1
        name = f"demo-{self.test}-{self.backend}-{self.shots:02d}-{step}.png"
        await page.screenshot(path=ARTIFACTS / name)


@asynccontextmanager
async def chromium(server: Server, backend: str, test: str) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            driver = Browser(browser, server, backend, test)
            yield driver
        finally:
            await browser.close()
    assert driver.outside == [], "the page asked for another host"


async def chat_with(page: Any, peer: str) -> None:
    await page.fill("#peer", peer)
    await page.click("#start-chat")
    await page.wait_for_selector("#chat:not([hidden])", timeout=SHOWN_MS)


async def say(page: Any, text: str) -> None:
    await page.fill("#text", text)
    await page.click("#send")
    await page.wait_for_selector(f"#log li.mine:has-text('{text}')", timeout=SHOWN_MS)


async def open_entry(page: Any, title: str) -> None:
    await page.click(f"#conversations li:has(.title:text-is('{title}'))", timeout=SHOWN_MS)
    await page.wait_for_selector("#chat:not([hidden])", timeout=SHOWN_MS)


async def back(page: Any) -> None:
    await page.click("#back")
    await page.wait_for_selector("#home:not([hidden])", timeout=SHOWN_MS)


def entry(page: Any, title: str) -> Any:
    return page.locator(f"#conversations li:has(.title:text-is('{title}'))")


async def log_texts(page: Any) -> list[str]:
    return [t.strip() for t in await page.locator("#log li").all_inner_texts()]


def test_the_demo_is_off_by_default(server: Server) -> None:
    """Without PARLEY_DEMO_ENABLED neither the page nor a demo route exists."""
    assert httpx.get(server.base_url + "/demo").status_code == 404
    assert httpx.post(server.base_url + "/demo/session", json={"user": "a"}).status_code == 404
    assert httpx.post(server.base_url + "/demo/users", json={"names": ["a"]}).status_code == 404


def test_demo_users_are_named(demo_server: Server) -> None:
    """The demo imports people by name and gives the names back for their MD5 IDs."""
    carol, dave = names("carol", "dave")
    made = httpx.post(demo_server.base_url + "/demo/users", json={"names": [carol, dave]})
    assert made.status_code == 200, made.text
    ids = [u["user_id_md5"] for u in made.json()["users"]]

    unknown = "0" * 32
    found = httpx.get(demo_server.base_url + "/demo/users", params={"ids": [*ids, unknown]})
    assert found.json()["users"] == [{"name": carol, "user_id_md5": ids[0]},
                                     {"name": dave, "user_id_md5": ids[1]}]
    blank = httpx.post(demo_server.base_url + "/demo/users", json={"names": [" "]})
    assert blank.status_code == 400


@needs_chromium
async def test_two_browsers_chat_both_ways(demo_server: Server, backend: str) -> None:
    """Alice starts a 1:1 chat with Bob by name, and each sees the other's messages live."""
    alice_name, bob_name = names("alice", "bob")
    async with chromium(demo_server, backend, "both-ways") as b:
        alice = await b.person(alice_name)
        bob = await b.person(bob_name)
        await chat_with(alice, bob_name)
        await say(alice, "Hello Bob")
        await b.shot(alice, "alice-sent")

        await open_entry(bob, alice_name)
        await bob.wait_for_selector("#log li:has-text('Hello Bob')", timeout=SHOWN_MS)
        await say(bob, "Hi Alice")
        await b.shot(bob, "bob-replied")
        await alice.wait_for_selector("#log li:has-text('Hi Alice')", timeout=SHOWN_MS)
        await b.shot(alice, "alice-got-reply")

        assert await log_texts(alice) == ["Hello Bob", "Hi Alice"]
        assert await log_texts(bob) == ["Hello Bob", "Hi Alice"]


@needs_chromium
async def test_offline_user_finds_messages_after_coming_back(demo_server: Server,
                                                             backend: str) -> None:
    """Messages sent while Bob's page is gone wait for him, with their count, after a reload."""
    alice_name, bob_name = names("alice", "bob")
    async with chromium(demo_server, backend, "offline") as b:
        alice = await b.person(alice_name)
        bob = await b.person(bob_name)
        await chat_with(alice, bob_name)
        await say(alice, "Are you there?")
        await open_entry(bob, alice_name)
        await bob.wait_for_selector("#log li:has-text('Are you there?')", timeout=SHOWN_MS)
        await back(bob)

        # Bob leaves the page: its socket closes and nothing reaches his tab.
        await bob.goto("about:blank")
        await say(alice, "I sent this while you were away")
        await say(alice, "And this")
        await b.shot(alice, "alice-sent-while-bob-away")

        # Back in the same tab: the saved session signs him in, sync brings the rest.
        await bob.goto(demo_server.base_url + "/demo")
        await bob.wait_for_selector("#home:not([hidden])", timeout=SHOWN_MS)
        badge = entry(bob, alice_name).locator(".badge")
        await badge.wait_for(timeout=SHOWN_MS)
        assert await badge.inner_text() == "2"
        assert await entry(bob, alice_name).locator(".last").inner_text() == "And this"
        await b.shot(bob, "bob-back-with-badge")

        await open_entry(bob, alice_name)
        await bob.wait_for_selector("#log li:has-text('And this')", timeout=SHOWN_MS)
        assert await log_texts(bob) == ["Are you there?", "I sent this while you were away",
                                        "And this"]
        await b.shot(bob, "bob-reads-history")

        # A plain reload also keeps the session and the whole history.
        await bob.reload()
        await bob.wait_for_selector("#home:not([hidden])", timeout=SHOWN_MS)
        await entry(bob, alice_name).wait_for(timeout=SHOWN_MS)
        assert await entry(bob, alice_name).locator(".badge").count() == 0
        await open_entry(bob, alice_name)
        await bob.wait_for_selector("#log li:has-text('And this')", timeout=SHOWN_MS)
        assert len(await log_texts(bob)) == 3
        await b.shot(bob, "bob-after-reload")


@needs_chromium
async def test_unread_badges_count_and_clear(demo_server: Server, backend: str) -> None:
    """A closed chat's badge counts new messages live, and opening the chat clears it."""
    alice_name, bob_name, carol_name = names("alice", "bob", "carol")
    async with chromium(demo_server, backend, "badges") as b:
        alice = await b.person(alice_name)
        carol = await b.person(carol_name)
        bob = await b.person(bob_name)
        await chat_with(alice, bob_name)
        await say(alice, "one")
        await say(alice, "two")
        await chat_with(carol, bob_name)
        await say(carol, "from carol")

        await entry(bob, alice_name).locator(".badge:text-is('2')").wait_for(timeout=SHOWN_MS)
        await entry(bob, carol_name).locator(".badge:text-is('1')").wait_for(timeout=SHOWN_MS)
        await b.shot(bob, "two-badges")

        await open_entry(bob, alice_name)
        await bob.wait_for_selector("#log li:has-text('two')", timeout=SHOWN_MS)
        await back(bob)
        assert await entry(bob, alice_name).locator(".badge").count() == 0
        assert await entry(bob, carol_name).locator(".badge").inner_text() == "1"
        await b.shot(bob, "alice-read")

        # While Bob reads Carol's chat her new message counts as read at once.
        await open_entry(bob, carol_name)
        await say(carol, "still there?")
        await bob.wait_for_selector("#log li:has-text('still there?')", timeout=SHOWN_MS)
        await back(bob)
        assert await entry(bob, carol_name).locator(".badge").count() == 0
        await say(alice, "three")
        await entry(bob, alice_name).locator(".badge:text-is('1')").wait_for(timeout=SHOWN_MS)
        await b.shot(bob, "new-badge")

        # The read markers are the server's: a reload shows the same counts.
        await bob.reload()
        await entry(bob, alice_name).locator(".badge:text-is('1')").wait_for(timeout=SHOWN_MS)
        assert await entry(bob, carol_name).locator(".badge").count() == 0
        await b.shot(bob, "badges-after-reload")


@needs_chromium
async def test_a_group_chat(demo_server: Server, backend: str) -> None:
    """Alice makes a group with Bob and Carol by name, and all three talk in it."""
    alice_name, bob_name, carol_name = names("alice", "bob", "carol")
    group = f"Lunch {alice_name}"
    async with chromium(demo_server, backend, "group") as b:
        alice = await b.person(alice_name)
        bob = await b.person(bob_name)
        carol = await b.person(carol_name)
        await alice.click("#new-group summary")
        await alice.fill("#group-name", group)
        await alice.fill("#group-members", f"{bob_name}, {carol_name}")
        await b.shot(alice, "new-group-form")
        await alice.click("#create-group")
        await alice.wait_for_selector(f"#chat-title:text-is('{group}')", timeout=SHOWN_MS)
        await say(alice, "Pizza at one?")

        await entry(bob, group).locator(".badge:text-is('1')").wait_for(timeout=SHOWN_MS)
        await b.shot(bob, "group-in-list")
        await open_entry(bob, group)
        await bob.wait_for_selector(f"#log li:has-text('{alice_name}')", timeout=SHOWN_MS)
        await say(bob, "Yes")
        await open_entry(carol, group)
        await carol.wait_for_selector("#log li:has-text('Yes')", timeout=SHOWN_MS)
        await say(carol, "Me too")
        await alice.wait_for_selector("#log li:has-text('Me too')", timeout=SHOWN_MS)
        await b.shot(alice, "group-chat")
        await b.shot(carol, "group-chat-carol")

        texts = await log_texts(alice)
        assert texts[0] == "(group created)"
        assert texts[1:] == ["Pizza at one?", f"{bob_name}\nYes", f"{carol_name}\nMe too"]


@needs_chromium
async def test_the_page_fits_a_phone(demo_server: Server, backend: str) -> None:
    """At 390 by 844 pixels the list and the chat are one column with nothing to scroll sideways."""
    alice_name, bob_name = names("alice", "bob")
    async with chromium(demo_server, backend, "phone") as b:
        alice = await b.person(alice_name, **PHONE)
        bob = await b.person(bob_name, **PHONE)
        await b.shot(alice, "phone-list-empty")
        await chat_with(alice, bob_name)
        await say(alice, "A long message that has to wrap on a narrow screen " * 3)
        await b.shot(alice, "phone-chat")
        await entry(bob, alice_name).locator(".badge").wait_for(timeout=SHOWN_MS)
        await b.shot(bob, "phone-list-badge")

        for page in (alice, bob):
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390
        box = await alice.locator("#send").bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844
