"""The App Server guides against the code: docs/webhooks.md, whose signature checks run and
whose events, routes and settings are the ones Parley has, and docs/moderation.md, whose
routes, settings and log fields are.

The Python and JavaScript checks are taken from the page as written and run against headers
made by app.webhooks.signing, the JavaScript one under `node`. The events are read from the
code that writes them: every `outbox.emit` and `outbox.record` call under app/, with the keys
of the `data` it passes.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from app.api import groups as group_routes
from app.api import messages as message_routes
from app.api import moderation as moderation_routes
from app.api import webhooks as webhook_routes
from app.config import Settings
from app.moderation import lists
from app.moderation.policy import ModerationSettings
from app.moderation.rules import ACTIONS
from app.services import groups, messages
from app.storage import models
from app.webhooks import before_send, dispatcher, signing
from app.webhooks.outbox import EVENT_TYPES, PING, event_body

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "webhooks.md"
MODERATION_DOC = ROOT / "docs" / "moderation.md"
APP = ROOT / "app"
NODE = shutil.which("node")
MAX_LINE = 100
SECRET = "whsec_0123456789abcdef0123456789abcdef0123456789abcdef"
BODY = b'{"event_id":"ev_1","type":"message.sent","data":{"text":"hi"}}'

# The REST routers whose sends may take trigger_hooks.
REST_MODULES = (message_routes, group_routes)

Verify = Callable[[str, str, str, bytes], bool]


# --- reading the page -------------------------------------------------------------------


@cache
def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _section(title: str, level: int, text: str | None = None) -> str:
    """The text under a heading, up to the next heading of the same or a higher level."""
    text = _doc() if text is None else text
    marks = "#" * level
    start = re.search(rf"^{marks} {re.escape(title)}[ \t]*$", text, re.M)
    assert start, f"no heading {marks} {title}"
    rest = text[start.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def _blocks(language: str, text: str | None = None) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _doc() if text is None else text, re.S)


def _snippet(language: str, marker: str) -> str:
    """The one code block of a language that holds the marker."""
    found = [block for block in _blocks(language) if marker in block]
    assert len(found) == 1, f"expected one ```{language} block with {marker!r}"
    return found[0]


def _table(text: str) -> dict[str, list[str]]:
    """Table rows keyed by their first cell, when it is one `code` span."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`([^`]+)`", cells[0]) if line.startswith("|") else None
        if match:
            rows[match.group(1)] = cells
    return rows


def _event_example(event_type: str) -> dict[str, Any]:
    examples = [json.loads(b) for b in _blocks("json", _section(f"`{event_type}`", 3))]
    assert len(examples) == 1, f"expected one example under ### `{event_type}`"
    return dict(examples[0])


# --- reading the code -------------------------------------------------------------------


def _str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _is_outbox_call(node: ast.AST) -> bool:
    """`outbox.emit(conn, hooks, app_id, type, data, now)`, `outbox.record(...)`, or
    `outbox.emit_many(...)` with a list of data."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "outbox"
            and node.func.attr in ("emit", "record", "emit_many") and len(node.args) >= 5)


def _types_passed(tree: ast.Module, fn: ast.AST, name: str) -> set[str]:
    """The fixed strings callers in the module pass for a parameter of `fn`."""
    assert isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
    index = [a.arg for a in fn.args.args].index(name)
    return {
        text
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
        and call.func.id == fn.name and index < len(call.args)
        and (text := _str(call.args[index])) is not None
    }


def _group_event_fields() -> dict[str, set[str]]:
    """The fields of each group system message, from the dicts that write them."""
    tree = ast.parse((APP / "services" / "groups.py").read_text(encoding="utf-8"))
    fields: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        keys = [_str(k) for k in node.keys] if isinstance(node, ast.Dict) else []
        if isinstance(node, ast.Dict) and "event" in keys:
            name = _str(node.values[keys.index("event")])
            assert name is not None
            fields.setdefault(name, set()).update(k for k in keys if k is not None)
    return fields


def _emits_in(path: Path) -> Iterator[tuple[str, set[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for call in (n for n in ast.walk(fn) if _is_outbox_call(n)):
            assert isinstance(call, ast.Call)
            kind, data = call.args[3], call.args[4]
            if isinstance(data, ast.ListComp):  # emit_many: one data per item
                data = data.elt
            assert isinstance(data, ast.Dict), f"{path.name}: teach _emits_in this data"
            keys = {k for k in map(_str, data.keys) if k is not None}
            spread = [v for k, v in zip(data.keys, data.values, strict=True) if k is None]
            if _str(kind) is not None:
                assert not spread
                yield str(_str(kind)), keys
            elif spread:
                # A group change: its data is the system message it wrote, with the group.
                assert path.name == "groups.py", f"{path.name}: teach _emits_in this spread"
                for event, hook_type in groups.WEBHOOK_EVENTS.items():
                    yield hook_type, keys | _group_event_fields()[event]
            elif isinstance(kind, ast.Name):
                for hook_type in _types_passed(tree, fn, kind.id):
                    yield hook_type, keys
            else:
                raise AssertionError(f"{path.name}: teach _emits_in this event type")


@cache
def _emitted() -> dict[str, set[str]]:
    """The keys of `data` for each event type the code writes."""
    found: dict[str, set[str]] = {}
    for path in sorted(APP.rglob("*.py")):
        for kind, keys in _emits_in(path):
            found.setdefault(kind, set()).update(keys)
    return found


def _message_fields() -> set[str]:
    row = SimpleNamespace(**{column.name: None for column in models.messages.columns})
    row.__dict__.update(conversation_id="p2p:a:b", seq=1, msg_id="m", sender_id="a",
                        content="{}", created_at_us=0)
    return set(messages.message_view(row))


def _before_send_fields() -> set[str]:
    """The keys of the `data` the before-send hook posts."""
    tree = ast.parse(Path(before_send.__file__).read_text(encoding="utf-8"))
    found = [n for n in ast.walk(tree) if isinstance(n, ast.Assign)
             and any(isinstance(t, ast.Name) and t.id == "data" for t in n.targets)]
    assert len(found) == 1 and isinstance(found[0].value, ast.Dict)
    return {k for k in map(_str, found[0].value.keys) if k is not None}


# --- the signature checks, as the page writes them -------------------------------------


@cache
def _python_verify() -> Verify:
    namespace: dict[str, Any] = {}
    exec(compile(_snippet("python", "def verify"), str(DOC), "exec"), namespace)
    return namespace["verify"]


def _node_verify(secret: str, timestamp: str, signature: str, body: bytes) -> bool:
    """Run the page's JavaScript under node, the body on stdin."""
    assert NODE is not None
    harness = _snippet("js", "function verify") + (
        "\nconst [secret, timestamp, signature] = process.argv.slice(1);\n"
        "const body = require('node:fs').readFileSync(0);\n"
        "process.stdout.write(verify(secret, timestamp, signature, body) ? 'ok' : 'no');\n"
    )
    done = subprocess.run([NODE, "-e", harness, secret, timestamp, signature], input=body,
                          capture_output=True, timeout=30, check=True)
    assert done.stdout in (b"ok", b"no"), done.stderr
    return done.stdout == b"ok"


def _signed(body: bytes, age_seconds: float = 0.0, secret: str = SECRET) -> tuple[str, str]:
    """(Parley-Timestamp, Parley-Signature) as Parley would send them `age_seconds` ago."""
    sent = signing.headers(secret, body, "ev_1", "message.sent", now=time.time() - age_seconds)
    return sent[signing.TIMESTAMP_HEADER], sent[signing.SIGNATURE_HEADER]


VERIFIERS = [
    pytest.param(lambda: _python_verify(), id="python"),
    pytest.param(lambda: _node_verify, id="javascript",
                 marks=pytest.mark.skipif(NODE is None, reason="node is not installed")),
]


@pytest.mark.parametrize("verifier", VERIFIERS)
def test_a_fresh_signature_verifies(verifier: Callable[[], Verify]) -> None:
    """A request Parley just signed passes the page's check."""
    timestamp, signature = _signed(BODY)
    assert verifier()(SECRET, timestamp, signature, BODY)


@pytest.mark.parametrize("verifier", VERIFIERS)
def test_a_tampered_body_fails(verifier: Callable[[], Verify]) -> None:
    """One changed byte of the body fails the check."""
    timestamp, signature = _signed(BODY)
    assert not verifier()(SECRET, timestamp, signature, BODY.replace(b"hi", b"ho"))


@pytest.mark.parametrize("verifier", VERIFIERS)
def test_a_stale_or_future_timestamp_fails(verifier: Callable[[], Verify]) -> None:
    """A request signed more than five minutes ago, or ahead, fails though its signature is
    right; one inside the window passes."""
    assert signing.TOLERANCE_SECONDS == 300
    # Just past the window on the stale side (the gap only grows until the check runs);
    # a minute past it on the future side, which shrinks while Node starts up.
    for age in (301, 3600, -360):
        timestamp, signature = _signed(BODY, age)
        assert not verifier()(SECRET, timestamp, signature, BODY), age
    timestamp, signature = _signed(BODY, 240)
    assert verifier()(SECRET, timestamp, signature, BODY)


@pytest.mark.parametrize("verifier", VERIFIERS)
def test_another_secret_or_a_moved_timestamp_fails(verifier: Callable[[], Verify]) -> None:
    """A signature made with another secret, or sent with another timestamp, fails."""
    timestamp, signature = _signed(BODY, secret="whsec_other")
    assert not verifier()(SECRET, timestamp, signature, BODY)
    timestamp, signature = _signed(BODY)
    assert not verifier()(SECRET, str(int(timestamp) - 1), signature, BODY)
    assert not verifier()(SECRET, "not-a-time", signature, BODY)


# --- events -----------------------------------------------------------------------------


def test_the_code_writes_every_listed_event_type_and_no_other() -> None:
    """The event types written under app/ are EVENT_TYPES, so the list below is the truth."""
    assert set(_emitted()) == set(EVENT_TYPES)


def test_every_event_type_has_a_row_and_a_section() -> None:
    """Each event type, and the ping, has a row in the events table and a ### section."""
    rows = _table(_section("Events", 2))
    assert set(rows) == {*EVENT_TYPES, PING}
    for event_type in (*EVENT_TYPES, PING):
        _section(f"`{event_type}`", 3)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_event_data_fields_are_documented_and_shown(event_type: str) -> None:
    """The row names every key of the event's data, and the example has exactly them."""
    row = " ".join(_table(_section("Events", 2))[event_type])
    keys = _emitted()[event_type]
    for key in keys:
        assert f"`{key}`" in row, (event_type, key)
    example = _event_example(event_type)
    assert example["type"] == event_type
    assert set(example["data"]) == keys
    if event_type == "message.sent":
        assert set(example["data"]["message"]) == _message_fields()


def test_every_body_has_the_envelope_of_event_body() -> None:
    """Every example body has exactly the fields Parley's envelope has."""
    envelope = set(json.loads(event_body("ev_1", PING, "ak_1", {}, 0)))
    bodies = [b for b in map(json.loads, _blocks("json")) if "event_id" in b and "data" in b]
    assert len(bodies) >= len(EVENT_TYPES) + 2
    for body in bodies:
        assert set(body) == envelope, body.get("type")
        assert re.fullmatch(r"ev_[0-9a-f]{24}", body["event_id"]), body["event_id"]
    for field in envelope:
        assert f"`{field}`" in _section("What Parley sends", 2), field


def test_every_header_parley_sends_is_named() -> None:
    """The header table lists each header a signed request carries."""
    rows = _table(_section("What Parley sends", 2))
    assert set(rows) >= set(signing.headers(SECRET, BODY, "ev_1", PING))


def test_the_before_send_request_and_answers_are_documented() -> None:
    """The hook's example has the data it posts, and each answer and on_error is named."""
    text = _section("The before-send hook", 2)
    examples = [json.loads(b) for b in _blocks("json", text)]
    asked = [e for e in examples if e.get("type") == before_send.EVENT_TYPE]
    assert len(asked) == 1 and set(asked[0]["data"]) == _before_send_fields()
    for action in ("allow", "reject", "replace"):
        assert f'`{{"action": "{action}"' in text, action
    for choice in ("allow", "reject"):
        assert f"`{choice}`" in text, choice


def _routes_taking(field: str) -> set[str]:
    """`METHOD /path` of every REST route whose body has the field."""
    found = set()
    for route in (r for module in REST_MODULES for r in module.router.routes):
        for param in getattr(getattr(route, "dependant", None), "body_params", []):
            model = getattr(param, "type_", None) or param.field_info.annotation
            if field in getattr(model, "model_fields", {}):
                found |= {f"{m} {route.path}" for m in route.methods}
    return found


def test_every_route_that_takes_trigger_hooks_is_named() -> None:
    """The loop section names each REST send that takes `trigger_hooks`."""
    routes = _routes_taking("trigger_hooks")
    assert routes
    text = _section("Avoiding loops: trigger_hooks", 2)
    for route in routes:
        assert f"`{route}`" in text, route


def test_the_retried_answers_are_named() -> None:
    """The delivery section names each status that is retried."""
    text = _section("Delivery", 2)
    for code in dispatcher.RETRYABLE_STATUS:
        assert f"`{code}`" in text, code
    assert "`5xx`" in text


# --- docs/moderation.md -----------------------------------------------------------------


@cache
def _moderation_doc() -> str:
    return MODERATION_DOC.read_text(encoding="utf-8")


def test_every_moderation_route_is_named() -> None:
    """The moderation guide names each content-security route, the client's report too."""
    routers = (moderation_routes.router, moderation_routes.client_router)
    for route in (r for router in routers for r in router.routes):
        for method in sorted(getattr(route, "methods", ())):
            assert f"`{method} {getattr(route, 'path', '')}`" in _moderation_doc(), route


def test_every_moderation_setting_has_a_row_with_its_default() -> None:
    """The settings table has a row per field of ModerationSettings, with its default."""
    text = _section("Settings", 2, _moderation_doc())
    rows = _table(text.split("\n### ")[0])  # the table before the subsections
    assert set(rows) == set(ModerationSettings.model_fields)
    node = ModerationSettings.effective(Settings(), {})
    for name in rows:
        value, shown = getattr(node, name), rows[name][1].strip("`")
        if isinstance(value, bool):
            assert shown == str(value).lower(), name
        elif isinstance(value, int | float):
            assert float(shown) == value, name
        else:
            assert shown == (json.dumps(value) if isinstance(value, dict) else value), name


def test_keyword_actions_and_log_fields_are_documented() -> None:
    """Each keyword action has a row, and the log's field table covers every entry field."""
    actions = _table(_section("Keywords", 2, _moderation_doc()))
    assert set(actions) >= set(ACTIONS)
    log = _section("The moderation log and reviews", 2, _moderation_doc())
    named = " ".join(" ".join(row) for row in _table(log).values())
    for field in moderation_routes.LogEntry.model_fields:
        assert f"`{field}`" in named or f'"{field}"' in log, field


def test_import_limits_are_the_codes_limits() -> None:
    """The page states the import limits the code enforces."""
    text = _moderation_doc()
    assert moderation_routes.IMPORT_BYTES_MAX == 8 * 1024 * 1024 and "8 MiB" in text
    assert f"{lists.IMPORT_LINES_MAX:,} lines" in text
    assert f"Up to {moderation_routes.BATCH_MAX:,} keywords" in text


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of a page."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", page.read_text(encoding="utf-8"), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


@pytest.mark.parametrize("page", [DOC, MODERATION_DOC], ids=lambda p: p.name)
def test_guide_is_well_formed(page: Path) -> None:
    """Every JSON block parses, every PARLEY_ name is a setting, every link to a page or a
    heading resolves, and no line is too wide."""
    text = page.read_text(encoding="utf-8")
    for target, anchor in re.findall(r"\]\(([\w.-]*\.md)?(?:#([^)]+))?\)", text):
        linked = page.parent / target if target else page
        assert linked.exists(), target
        assert not anchor or anchor in _anchors(linked), (target, anchor)
    for block in _blocks("json", text):
        json.loads(block)
    for name in set(re.findall(r"PARLEY_([A-Z_]+)", text)):
        assert name.lower() in Settings.model_fields, name
    wide = [n for n, line in enumerate(text.splitlines(), 1) if len(line) > MAX_LINE]
    assert not wide, f"lines over {MAX_LINE} characters: {wide}"


# --- routes, settings and the page itself -----------------------------------------------


def test_every_webhook_route_is_named() -> None:
    """The page names each route of app/api/webhooks.py as `METHOD /path`."""
    for route in webhook_routes.router.routes:
        for method in sorted(getattr(route, "methods", ())):
            assert f"`{method} {getattr(route, 'path', '')}`" in _doc(), route


def test_settings_table_has_every_webhook_setting_with_its_default() -> None:
    """Each PARLEY_WEBHOOK_* setting and the before-send limit has a row with its default."""
    rows = _table(_section("Settings", 2))
    wanted = [n for n in Settings.model_fields if n.startswith(("webhook_", "before_send_"))]
    assert {f"PARLEY_{n.upper()}" for n in wanted} == set(rows)
    for name in wanted:
        default = Settings.model_fields[name].default
        shown = rows[f"PARLEY_{name.upper()}"][1].strip("`")
        if isinstance(default, bool):
            assert shown == str(default).lower(), name
        else:
            assert float(shown) == default, name
