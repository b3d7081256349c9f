"""docs/protocol.md against the code: frames, fields, close codes, error codes and limits.

The page is read as Markdown. The code is read two ways: by importing it (frame models,
close codes, settings, the views that shape messages) and by walking the syntax trees of
the modules that build frames and raise errors. A frame, field, error code, close reason
or setting the page does not mention fails a test here, and so does a stale entry.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from app import errors
from app.config import Settings
from app.errors import CloseCode, ParleyError
from app.gateway import endpoint, frames
from app.gateway.codec import HEARTBEAT
from app.services import conversations, messages

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "protocol.md"
ENDPOINT = ROOT / "app" / "gateway" / "endpoint.py"
GATEWAY = sorted((ROOT / "app" / "gateway").glob("*.py"))
SERVICES = sorted((ROOT / "app" / "services").glob("*.py"))
# Errors reach a client from the gateway and the services, and through the two helper
# modules those call that raise errors of their own.
ERROR_SOURCES = [*GATEWAY, *SERVICES, ROOT / "app" / "errors.py", ROOT / "app" / "ids.py"]
ERROR_CLASSES = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, ParleyError)
}
MAX_LINE = 100


# --- reading the page -------------------------------------------------------------------


@cache
def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _section(title: str, level: int = 2, text: str | None = None) -> str:
    """The text under a heading, up to the next heading of the same or a higher level."""
    text = _doc() if text is None else text
    marks = "#" * level
    start = re.search(rf"^{marks} {re.escape(title)}[ \t]*$", text, re.M)
    assert start, f"docs/protocol.md has no heading {marks} {title}"
    rest = text[start.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def _subheadings(text: str) -> list[str]:
    """The names in the ### `name` headings of a section."""
    return re.findall(r"^### `([a-z_]+)`[ \t]*$", text, re.M)


def _frame_section(name: str, side: str) -> str:
    return _section(f"`{name}`", 3, _section(side))


def _rows(text: str) -> list[list[str]]:
    """The cells of every table row in a text, header rows included."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _keyed_rows(text: str) -> dict[str, list[str]]:
    """Table rows by their first cell, when that cell is one `code` span."""
    keyed = {}
    for row in _rows(text):
        match = re.fullmatch(r"`([^`]+)`", row[0])
        if match:
            keyed[match.group(1)] = row
    return keyed


def _examples(text: str) -> list[Any]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a value, nested ones included."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


def _error_rows() -> dict[str, list[str]]:
    return _keyed_rows(_section("Error codes"))


def _close_rows() -> dict[int, list[str]]:
    return {int(row[0]): row for row in _rows(_section("Close codes")) if row[0].isdigit()}


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# --- reading the code -------------------------------------------------------------------


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _calls(tree: ast.AST) -> Iterator[ast.Call]:
    return (node for node in ast.walk(tree) if isinstance(node, ast.Call))


def _str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _close_code(node: ast.AST) -> CloseCode | None:
    """The member a `CloseCode.NAME` expression names."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "CloseCode"
    ):
        return CloseCode[node.attr]
    return None


def _error_class(node: ast.AST) -> type[ParleyError] | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return ERROR_CLASSES.get(node.func.id)
    return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _frame_type(node: ast.AST) -> str | None:
    """The "type" of a dict literal that builds a frame, if it is one."""
    if not isinstance(node, ast.Dict):
        return None
    for key, value in zip(node.keys, node.values, strict=True):
        if _str(key) == "type":
            return _str(value)
    return None


def _raised_in(tree: ast.Module) -> Iterator[tuple[str, CloseCode | None]]:
    # An error passed to a call beside a close code is closed with that code instead.
    override = {}
    for call in _calls(tree):
        closes = [c for c in map(_close_code, call.args) if c is not None]
        for arg in call.args:
            if closes and _error_class(arg) is not None:
                override[id(arg)] = closes[0]

    for call in _calls(tree):
        cls = _error_class(call)
        if cls is None:
            continue
        given = _keyword(call, "code")
        code = cls.code if given is None else _str(given)
        if code is not None:  # a code passed on from another error is found at its source
            yield code, override.get(id(call), cls.close_code)


def _ordered_in(tree: ast.Module) -> Iterator[tuple[str, CloseCode | None]]:
    """Errors sent without an exception: reaper orders and hand-built error frames."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and len(node.elts) >= 2:
            close, code = _close_code(node.elts[0]), _str(node.elts[1])
            if close is not None and code is not None:
                yield code, close
    for call in _calls(tree):
        close_node = _keyword(call, "close_code")
        close = _close_code(close_node) if close_node is not None else None
        for arg in call.args:
            if _frame_type(arg) == "error":
                assert isinstance(arg, ast.Dict)
                for key, value in zip(arg.keys, arg.values, strict=True):
                    if _str(key) == "code" and _str(value) is not None:
                        yield str(_str(value)), close


@cache
def _raised() -> list[tuple[str, CloseCode | None]]:
    """(error code, close code or None) for every error a client can be sent."""
    found = []
    for path in ERROR_SOURCES:
        found += [*_raised_in(_tree(path)), *_ordered_in(_tree(path))]
    return found


@cache
def _close_reasons() -> list[tuple[str, CloseCode]]:
    """(reason, close code) for every close ordered with a fixed reason."""
    found = []
    for path in [*GATEWAY, *SERVICES]:
        for call in _calls(_tree(path)):
            for first, second in zip(call.args, call.args[1:], strict=False):
                close, reason = _close_code(first), _str(second)
                if close is not None and reason is not None:
                    found.append((reason, close))
            close_node, reason_node = _keyword(call, "close_code"), _keyword(call, "close_reason")
            if close_node is not None and _str(reason_node) is not None:
                close = _close_code(close_node)
                if close is not None:
                    found.append((str(_str(reason_node)), close))
    return found + [(code, close) for code, close in _raised() if close is not None]


def _dict_keys(node: ast.Dict) -> set[str]:
    return {key for key in map(_str, node.keys) if key is not None}


Built = tuple[str, set[str], set[str]]


def _built_frames(tree: ast.Module, only_published: bool) -> Iterator[Built]:
    """(type, top-level keys, all keys) of each frame a module builds as a dict literal."""
    nodes: list[ast.AST] = []
    if only_published:
        for call in _calls(tree):
            if isinstance(call.func, ast.Name) and call.func.id == "Delivery":
                nodes += call.args
    else:
        nodes = list(ast.walk(tree))
    for node in nodes:
        kind = _frame_type(node)
        if kind is not None:
            assert isinstance(node, ast.Dict)
            later = _set_later(tree, node) | (_spread_fields(kind) if None in node.keys else set())
            nested = {k for d in ast.walk(node) if isinstance(d, ast.Dict) for k in _dict_keys(d)}
            yield kind, _dict_keys(node) | later, nested | later


def _set_later(tree: ast.Module, frame: ast.Dict) -> set[str]:
    """Keys added by `name["key"] = ...` to a frame first bound to `name`."""
    names = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is frame
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    return {
        key
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Subscript)
        and isinstance(target.value, ast.Name)
        and target.value.id in names
        and (key := _str(target.slice)) is not None
    }


def _spread_fields(kind: str) -> set[str]:
    """Fields a frame literal takes from ``**x.to_dict()``: an ack's, or an error's."""
    if kind == "send_ok":
        return set(messages.Ack("m", "c", 1, 0).to_dict())
    if kind == "error":
        return set(ParleyError("m", limit=1).to_dict())
    raise AssertionError(f"a {kind!r} frame spreads an object: teach _spread_fields its fields")


@cache
def _server_frames() -> dict[str, list[tuple[set[str], set[str]]]]:
    """Every frame the server builds, by type: (top-level keys, all keys) per literal."""
    found: dict[str, list[tuple[set[str], set[str]]]] = {}
    replies = set().union(*_handler_replies().values())
    sources = [(p, False) for p in GATEWAY] + [(p, True) for p in SERVICES]
    for path, only_published in sources:
        for kind, top, every in _built_frames(_tree(path), only_published):
            echo = {"id"} if kind in replies else set()  # _handle adds the request's id
            found.setdefault(kind, []).append((top | echo, every | echo))
    return found


@cache
def _handler_replies() -> dict[str, set[str]]:
    """The frame types each endpoint handler function returns, by function name."""
    replies = {}
    for node in ast.walk(_tree(ENDPOINT)):
        if isinstance(node, ast.AsyncFunctionDef):
            replies[node.name] = {
                kind for d in ast.walk(node) if (kind := _frame_type(d)) is not None
            }
    return replies


def _message_fields() -> set[str]:
    row = SimpleNamespace(conversation_id="p2p:a:b", seq=1, msg_id="m", sender_id="a",
                          content="{}", client_msg_id=None, created_at_us=0)
    return set(messages.message_view(row))


def _conversation_fields() -> set[str]:
    row = SimpleNamespace(conversation_id="p2p:a:b", kind="p2p", peer_id="b", last_seq=1,
                          read_seq=0, delivered_seq=0, last_message_at_us=0, msg_id=None)
    return set(conversations._conversation_view(row))


def _settings_used() -> set[str]:
    """Settings the gateway and the services read."""
    used = set()
    for path in [*GATEWAY, *SERVICES]:
        used |= set(re.findall(r"\b(?:settings|s)\.([a-z_]+)", path.read_text(encoding="utf-8")))
    return used & set(Settings.model_fields)


# --- client frames ----------------------------------------------------------------------


def test_every_client_frame_type_is_documented_and_no_other() -> None:
    """The client frame headings are exactly the frame types the gateway parses."""
    assert sorted(_subheadings(_section("Client frames"))) == sorted(frames.MODELS)


@pytest.mark.parametrize("name", sorted(frames.MODELS))
def test_client_frame_fields_and_rules_are_documented(name: str) -> None:
    """Each field of a client frame has a row with its rules, and no row is stale."""
    model = frames.MODELS[name]
    rows = _keyed_rows(_frame_section(name, "Client frames"))
    fields = {k: v for k, v in model.model_fields.items() if k not in ("id", "type")}
    assert set(rows) == set(fields)

    for field_name, info in fields.items():
        row = " ".join(rows[field_name])
        assert ("required" if info.is_required() else "optional") in row, field_name
        if not info.is_required() and info.default is not None:
            assert f"default {info.default}" in row, field_name
        for rule in info.metadata:
            for attr in ("min_length", "max_length", "ge", "gt", "le", "lt"):
                if getattr(rule, attr, None) is not None:
                    assert str(getattr(rule, attr)) in row, (field_name, attr)


@pytest.mark.parametrize("name", sorted(frames.MODELS))
def test_client_frame_examples_parse_as_that_frame(name: str) -> None:
    """Every JSON example of a client frame is accepted by the gateway as that frame."""
    examples = _examples(_frame_section(name, "Client frames"))
    assert examples, f"no example of {name}"
    for example in examples:
        assert isinstance(frames.parse(example), frames.MODELS[name])


@pytest.mark.parametrize("name", sorted(frames.MODELS))
def test_client_frame_names_its_reply(name: str) -> None:
    """Each client frame's section names the frame types its handler replies with."""
    handler = endpoint.HANDLERS[frames.MODELS[name]].__name__
    replies = _handler_replies()[handler]
    text = _frame_section(name, "Client frames")
    if not replies:
        assert "no reply" in text.lower()
    for reply in replies:
        assert f"`{reply}`" in text, (name, reply)


# --- server frames ----------------------------------------------------------------------


def test_every_server_frame_type_is_documented_and_no_other() -> None:
    """The server frame headings are exactly the frame types the server builds."""
    assert sorted(_subheadings(_section("Server frames"))) == sorted(_server_frames())


@pytest.mark.parametrize("kind", sorted(_server_frames()))
def test_server_frame_fields_are_documented(kind: str) -> None:
    """Every field the server writes into a frame is named in that frame's section."""
    text = _frame_section(kind, "Server frames")
    for _, every in _server_frames()[kind]:
        for field_name in every - {"type", "id"}:
            assert f"`{field_name}`" in text, (kind, field_name)


@pytest.mark.parametrize("kind", sorted(_server_frames()))
def test_server_frame_examples_carry_every_field(kind: str) -> None:
    """For each way the server builds a frame, some example has all its fields."""
    examples = _examples(_frame_section(kind, "Server frames"))
    assert all(example["type"] == kind for example in examples)
    for top, _ in _server_frames()[kind]:
        assert any(top <= set(example) for example in examples), (kind, sorted(top))


def test_message_object_fields_are_documented_and_examples_complete() -> None:
    """The message object table and every message in the examples have exactly its fields."""
    fields = _message_fields()
    assert set(_keyed_rows(_section("The message object", 3))) == fields
    shown = [o for e in _examples(_doc()) for o in _objects(e) if {"msg_id", "from"} <= set(o)]
    assert shown
    for message in shown:
        assert set(message) == fields


def test_conversation_entry_fields_are_documented_and_examples_complete() -> None:
    """The conversations_ok entry table and example entries have exactly its fields."""
    fields = _conversation_fields()
    rows = _keyed_rows(_frame_section("conversations_ok", "Server frames"))
    assert set(rows) == fields
    shown = [o for e in _examples(_doc()) for o in _objects(e) if {"unread", "kind"} <= set(o)]
    assert shown
    for entry in shown:
        assert set(entry) == fields


def test_heartbeat_is_documented() -> None:
    """The heartbeat section shows the exact heartbeat text."""
    assert f"`{HEARTBEAT}`" in _section("Heartbeat")


# --- close codes ------------------------------------------------------------------------


def test_close_code_table_has_every_member_with_its_number() -> None:
    """Each CloseCode member has a row with its number and name, and no row is stale."""
    rows = _close_rows()
    assert sorted(rows) == sorted(code.value for code in CloseCode)
    for code in CloseCode:
        assert rows[code.value][1] == f"`{code.name}`"


@pytest.mark.parametrize("reason,close", sorted(set(_close_reasons())))
def test_every_close_reason_is_documented_under_its_code(reason: str, close: CloseCode) -> None:
    """A close reason is an error code closing with that number, or is in that code's row."""
    errors_by_code = _error_rows()
    if reason in errors_by_code:
        assert str(close.value) in errors_by_code[reason][2], reason
    else:
        assert f"`{reason}`" in " ".join(_close_rows()[close.value]), reason


# --- error codes ------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted({code for code, _ in _raised()}))
def test_every_error_code_is_in_the_error_table(code: str) -> None:
    """Every error code the gateway and the services can send has a row."""
    assert code in _error_rows(), f"{code!r} is raised in app/ but has no row in {DOC.name}"


@pytest.mark.parametrize("code", sorted({code for code, _ in _raised()}))
def test_error_table_says_whether_each_code_closes(code: str) -> None:
    """The Closes cell names every close code a code is sent with, or says no."""
    row = _error_rows().get(code)
    assert row is not None, f"{code!r} has no row in {DOC.name}"
    cell = row[2]
    closes = {close for raised, close in _raised() if raised == code}
    for close in closes - {None}:
        assert str(close.value) in cell, (code, close)
    if closes == {None}:
        assert cell.startswith("no"), code


def test_documented_error_codes_exist_in_the_code() -> None:
    """No error table row names a code that nothing in app/ uses."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "app").rglob("*.py"))
    stale = [code for code in _error_rows() if f'"{code}"' not in source]
    assert not stale, f"no code in app/ uses {stale}"


# --- limits and the page itself ---------------------------------------------------------


def test_limits_table_defaults_match_settings() -> None:
    """Each limit row names a real setting and shows its default."""
    rows = [row for row in _rows(_section("Limits")) if row[2].startswith("`PARLEY_")]
    assert rows
    for _, default, setting in rows:
        name = setting.strip("`").removeprefix("PARLEY_").lower()
        assert name in Settings.model_fields, setting
        shown = re.match(r"[\d.]+", default)
        assert shown and float(shown.group()) == Settings.model_fields[name].default, setting


def test_every_setting_the_data_plane_reads_is_in_the_limits_table() -> None:
    """A setting the gateway or the services read has a row in the limits table."""
    documented = {
        row[2].strip("`").removeprefix("PARLEY_").lower() for row in _rows(_section("Limits"))
    }
    missing = _settings_used() - documented
    assert not missing, f"settings read by the data plane but not in the limits table: {missing}"


def test_every_setting_named_anywhere_exists() -> None:
    """Every PARLEY_ name on the page is a real setting."""
    for name in set(re.findall(r"PARLEY_([A-Z_]+)", _doc())):
        assert name.lower() in Settings.model_fields, name


def test_every_json_example_parses() -> None:
    """Every JSON block on the page is valid JSON."""
    assert len(_examples(_doc())) == len(re.findall(r"```json\n", _doc()))


def test_links_within_the_page_resolve() -> None:
    """Every #anchor link names a heading on the page."""
    seen: Counter[str] = Counter()
    slugs = []
    for heading in re.findall(r"^#{1,6} (.+)$", _doc(), re.M):
        slug = _slug(heading)
        slugs.append(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    for anchor in re.findall(r"\]\(#([^)]+)\)", _doc()):
        assert anchor in slugs, anchor


def test_lines_fit_the_width() -> None:
    """No line of the page is wider than 100 characters."""
    wide = [n for n, line in enumerate(_doc().splitlines(), 1) if len(line) > MAX_LINE]
    assert not wide, f"lines over {MAX_LINE} characters: {wide}"
