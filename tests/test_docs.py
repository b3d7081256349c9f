"""docs/protocol.md against the code: frames, fields, close codes, error codes and limits.

The page is read as Markdown. The code is read two ways: by importing it (frame models,
close codes, settings, the views that shape messages, conversations and groups) and by
walking the syntax trees of the modules that build frames, write system messages and raise
errors. A frame, field, system event, error code, close reason or setting the page does not
mention fails a test here, and so does a stale entry.

Error codes are looked for in every module of app/: a code the gateway or a send stage
(as wired in app/main.py) sends belongs in the main table, one only REST callers get may go
in the REST-only table, which gives its HTTP status instead of a close code.
"""

from __future__ import annotations

import ast
import json
import re
import typing
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic.fields import FieldInfo

from app import errors
from app.api import groups as group_routes
from app.config import Settings
from app.errors import CloseCode, ParleyError
from app.gateway import endpoint, frames
from app.gateway.codec import HEARTBEAT
from app.services import conversations, groups, membership, messages, recall
from app.storage import models

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "protocol.md"
ENDPOINT = ROOT / "app" / "gateway" / "endpoint.py"
MAIN = ROOT / "app" / "main.py"
GATEWAY = sorted((ROOT / "app" / "gateway").glob("*.py"))
SERVICES_DIR = ROOT / "app" / "services"
SERVICES = sorted(SERVICES_DIR.glob("*.py"))


def _module_path(dotted: str) -> Path | None:
    """The file of an app module named with dots, or None if it is not one."""
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _send_stage_modules() -> list[Path]:
    """The modules whose objects app/main.py wires into the Context as send stages."""
    tree = ast.parse(MAIN.read_text(encoding="utf-8"))
    imported = {alias.asname or alias.name: node.module
                for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
                for alias in node.names}
    made = {target.id: node.value.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            for target in node.targets if isinstance(target, ast.Name)}
    wired = [kw.value for node in ast.walk(tree) if isinstance(node, ast.Call)
             for kw in node.keywords if kw.arg == "send_stages"]
    stages = [item for w in wired if isinstance(w, ast.Tuple) for item in w.elts]
    assert stages, "app/main.py no longer passes send_stages=(...); teach _send_stage_modules"
    found = []
    for stage in stages:
        # A bound method of an object made in main (moderator.check), or a function.
        name = stage.value.id if isinstance(stage, ast.Attribute) \
            and isinstance(stage.value, ast.Name) else getattr(stage, "id", None)
        source = imported.get(made.get(name, name)) if name else None
        path = _module_path(source) if source else None
        assert path is not None, f"cannot tell where send stage {ast.unparse(stage)} lives"
        found.append(path)
    return found


# Send stages (content moderation, the before-send hook) refuse messages and may push frames
# of their own; the rest of app/moderation is what they are built from.
SEND_STAGES = sorted(set(_send_stage_modules()))
STAGES = sorted({*(ROOT / "app" / "moderation").rglob("*.py"), *SEND_STAGES})
# Every error code raised anywhere in app/ has a row on the page: the ones a WebSocket
# client can get, and the REST-only ones, so that one page names every code.
ERROR_SOURCES = sorted((ROOT / "app").rglob("*.py"))
ERROR_CLASSES = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, ParleyError)
}
MAX_LINE = 100

Fn = ast.FunctionDef | ast.AsyncFunctionDef
# The keys of an object, each with the shape of its value; a list is shaped as its items.
Shape = dict[str, "Shape"]


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


def _shown(*keys: str) -> list[dict[str, Any]]:
    """Every object in the page's examples that has all these keys."""
    return [o for e in _examples(_doc()) for o in _objects(e) if set(keys) <= set(o)]


REST_ONLY = "REST-only error codes"


def _error_rows() -> dict[str, list[str]]:
    """Every row of both error tables."""
    return _keyed_rows(_section("Error codes"))


def _socket_error_rows() -> dict[str, list[str]]:
    """The table of codes a WebSocket client can get: the one before the REST-only table."""
    text = _section("Error codes")
    return _keyed_rows(text[: text.index(f"### {REST_ONLY}")])


def _rest_error_rows() -> dict[str, list[str]]:
    return _keyed_rows(_section(REST_ONLY, 3, _section("Error codes")))


def _close_rows() -> dict[int, list[str]]:
    return {int(row[0]): row for row in _rows(_section("Close codes")) if row[0].isdigit()}


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# --- reading the code: errors -----------------------------------------------------------


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


def _dict_keys(node: ast.Dict) -> set[str]:
    return {key for key in map(_str, node.keys) if key is not None}


def _type_value(node: ast.AST) -> ast.expr | None:
    """The value under "type" in a dict literal, if the node is one and has it."""
    if not isinstance(node, ast.Dict):
        return None
    for key, value in zip(node.keys, node.values, strict=True):
        if _str(key) == "type":
            return value
    return None


def _frame_type(node: ast.AST) -> str | None:
    """The "type" of a dict literal that builds a frame, if it is a fixed string."""
    return _str(_type_value(node))


def _frame_type_pattern(node: ast.AST) -> str | None:
    """A "type" made from the request's own type, as f"{frame.type}_ok", as "{}_ok"."""
    value = _type_value(node)
    if not isinstance(value, ast.JoinedStr):
        return None
    pattern = ""
    for part in value.values:
        if isinstance(part, ast.Constant):
            pattern += str(part.value)
        elif isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Attribute) \
                and part.value.attr == "type":
            pattern += "{}"
        else:
            raise AssertionError(f"teach _frame_type_pattern this f-string: {ast.unparse(value)}")
    return pattern


class Raised(typing.NamedTuple):
    """One place an error code is sent from."""

    code: str
    close: CloseCode | None  # the close code that follows it on /ws, if any
    status: int | None  # its HTTP status on REST, when the source shows it


def _raised_in(tree: ast.Module) -> Iterator[Raised]:
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
            yield Raised(code, override.get(id(call), cls.close_code), cls.http_status)


def _ordered_in(tree: ast.Module) -> Iterator[Raised]:
    """Errors sent without an exception: reaper orders, hand-built error frames, the error
    objects of per-user outcomes, and a table of HTTP statuses to codes."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and len(node.elts) >= 2:
            close, code = _close_code(node.elts[0]), _str(node.elts[1])
            if close is not None and code is not None:
                yield Raised(code, close, None)
        if isinstance(node, ast.Dict) and _dict_keys(node) == {"code", "message"}:
            code = _str(node.values[[_str(k) for k in node.keys].index("code")])
            if code is not None:
                yield Raised(code, None, None)
        if isinstance(node, ast.Dict) and node.keys and all(
            isinstance(k, ast.Constant) and type(k.value) is int for k in node.keys
        ) and all(_str(v) is not None for v in node.values):
            for key, value in zip(node.keys, node.values, strict=True):
                assert isinstance(key, ast.Constant)
                yield Raised(str(_str(value)), None, int(key.value))
    for call in _calls(tree):
        close_node = _keyword(call, "close_code")
        close = _close_code(close_node) if close_node is not None else None
        for arg in call.args:
            if _frame_type(arg) == "error":
                assert isinstance(arg, ast.Dict)
                for key, value in zip(arg.keys, arg.values, strict=True):
                    if _str(key) == "code" and _str(value) is not None:
                        yield Raised(str(_str(value)), close, None)


def _argument(call: ast.Call, fn: Fn, name: str) -> ast.expr | None:
    """The expression a call passes for one of a function's parameters."""
    names = [a.arg for a in fn.args.args]
    given = _keyword(call, name)
    if given is None and name in names and names.index(name) < len(call.args):
        given = call.args[names.index(name)]
    return given


def _relayed_in(tree: ast.Module) -> Iterator[Raised]:
    """Codes handed to a function of the same module by its `code` parameter, as in
    `_delete_one(ctx, app_id, table, row_id, "keyword_not_found")` or
    `_error(400, "invalid_json", ...)`."""
    helpers = {fn.name: fn for fn in tree.body
               if isinstance(fn, Fn) and "code" in [a.arg for a in fn.args.args]}
    for call in _calls(tree):
        fn = helpers.get(call.func.id) if isinstance(call.func, ast.Name) else None
        code = _str(_argument(call, fn, "code")) if fn is not None else None
        if fn is None or code is None:
            continue
        # The error the function raises with that code, if it raises one.
        cls = next((_error_class(c) for c in _calls(fn) if _error_class(c) is not None
                    and ast.unparse(_keyword(c, "code") or ast.Constant(None)) == "code"),
                   None)
        status = _argument(call, fn, "status")
        if cls is not None:
            yield Raised(code, cls.close_code, cls.http_status)
        else:
            shown = status.value if isinstance(status, ast.Constant) else None
            yield Raised(code, None, shown if isinstance(shown, int) else None)


@cache
def _raised_by(path: Path) -> list[Raised]:
    tree = _tree(path)
    return [*_raised_in(tree), *_ordered_in(tree), *_relayed_in(tree)]


@cache
def _raised() -> list[tuple[str, CloseCode | None]]:
    """(error code, close code or None) for every error a client can be sent."""
    return [(r.code, r.close) for path in ERROR_SOURCES for r in _raised_by(path)]


@cache
def _statuses() -> dict[str, set[int]]:
    """The HTTP statuses each code is sent with, where the source shows them."""
    found: dict[str, set[int]] = {}
    for path in ERROR_SOURCES:
        for r in _raised_by(path):
            found.setdefault(r.code, set()).update({r.status} if r.status else set())
    return found


@cache
def _error_data_keys() -> set[str]:
    """The keys errors put in `data`: the keyword arguments they are raised with."""
    return {
        kw.arg
        for path in ERROR_SOURCES
        for call in _calls(_tree(path))
        if _error_class(call) is not None
        for kw in call.keywords
        if kw.arg is not None and kw.arg != "code"
    }


@cache
def _close_reasons() -> list[tuple[str, CloseCode]]:
    """(reason, close code) for every close ordered with a fixed reason."""
    found = []
    for path in [*GATEWAY, *SERVICES, *STAGES]:
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


# --- reading the code: the shape of what a frame holds ----------------------------------


@cache
def _functions(path: Path) -> dict[str, Fn]:
    tree = _tree(path)
    return {node.name: node for node in tree.body if isinstance(node, Fn)}


def _merge(*shapes: Shape) -> Shape:
    merged: Shape = {}
    for shape in shapes:
        for key, inner in shape.items():
            merged[key] = _merge(merged.get(key, {}), inner)
    return merged


def _assigned(fn: Fn, name: str) -> list[ast.expr]:
    """The values a function binds to a plain name."""
    values = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            assert node.value is not None
            values.append(node.value)
    return values


def _keys_set_later(fn: Fn, name: str) -> Shape:
    """Keys a function adds by `name["key"] = value`, each with its value's shape."""
    return {
        key: {}
        for node in ast.walk(fn)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Subscript)
        and isinstance(target.value, ast.Name)
        and target.value.id == name
        and (key := _str(target.slice)) is not None
    }


def _returned(fn: Fn, frame: str | None) -> list[ast.expr]:
    """What a function returns; for a `match` over client frames, for that frame only."""
    match = next((n for n in ast.walk(fn) if isinstance(n, ast.Match)), None)
    inside = {id(n) for n in ast.walk(match)} if match is not None else set()
    if match is not None and frame is not None:
        model = frames.MODELS[frame].__name__
        for case in match.cases:
            pattern = case.pattern
            if isinstance(pattern, ast.MatchClass) \
                    and ast.unparse(pattern.cls).split(".")[-1] == model:
                found = [n.value for s in case.body for n in ast.walk(s)
                         if isinstance(n, ast.Return) and n.value is not None]
                if found:
                    return found
    return [n.value for n in ast.walk(fn)
            if isinstance(n, ast.Return) and n.value is not None and id(n) not in inside]


def _shape(path: Path, fn: Fn | None, node: ast.AST | None, frame: str | None = None,
           depth: int = 0) -> Shape:
    """The keys of the objects an expression yields, as far as the source shows them."""
    assert depth < 20, "the shape of a frame loops; teach _shape to stop"
    deeper = depth + 1
    if isinstance(node, ast.Await):
        return _shape(path, fn, node.value, frame, deeper)
    if isinstance(node, ast.Dict):
        parts: list[Shape] = []
        for key, value in zip(node.keys, node.values, strict=True):
            inner = _shape(path, fn, value, frame, deeper)
            parts.append(inner if key is None else {str(_str(key)): inner})
        return _merge(*parts)
    if isinstance(node, ast.ListComp):
        return _shape(path, fn, node.elt, frame, deeper)
    if isinstance(node, ast.List):
        return _merge(*(_shape(path, fn, item, frame, deeper) for item in node.elts))
    if isinstance(node, ast.Name) and fn is not None:
        bound = [_shape(path, fn, value, frame, deeper) for value in _assigned(fn, node.id)]
        return _merge(*bound, _keys_set_later(fn, node.id))
    if isinstance(node, ast.Call):
        return _call_shape(path, node, frame, deeper)
    return {}


def _call_shape(path: Path, call: ast.Call, frame: str | None, depth: int) -> Shape:
    """What a call returns: a function of the same module or of a service module."""
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        target = SERVICES_DIR / f"{func.value.id}.py"
        name = func.attr
    elif isinstance(func, ast.Name):
        target, name = path, func.id
    else:
        return {}
    called = _functions(target).get(name) if target.exists() else None
    if called is None:
        return {}
    return _merge(*(_shape(target, called, value, frame, depth)
                    for value in _returned(called, frame)))


def _spread_fields(kind: str, value: ast.expr) -> Shape | None:
    """Fields a frame takes from ``**x.to_dict()``: an ack's, or an error's."""
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and value.func.attr == "to_dict"):
        return None
    if kind == "send_ok":
        return {key: {} for key in messages.Ack("m", "c", 1, 0).to_dict()}
    if kind == "error":
        return {key: {} for key in ParleyError("m", limit=1).to_dict()}
    raise AssertionError(f"a {kind!r} frame spreads an object: teach _spread_fields its fields")


def _frame_shape(path: Path, fn: Fn, node: ast.Dict, kind: str, frame: str | None) -> Shape:
    parts: list[Shape] = []
    for key, value in zip(node.keys, node.values, strict=True):
        if key is None:
            spread = _spread_fields(kind, value)
            parts.append(spread if spread is not None else _shape(path, fn, value, frame))
        elif _str(key) != "type":
            parts.append({str(_str(key)): _shape(path, fn, value, frame)})
    return _merge(*parts, *(_keys_set_later(fn, name) for name in _names_of(fn, node)))


def _names_of(fn: Fn, value: ast.expr) -> set[str]:
    """The names a function binds a value to, as a frame it finishes later."""
    return {
        target.id
        for node in ast.walk(fn)
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is value
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }


@cache
def _handled_by() -> dict[str, list[str]]:
    """The client frame types each endpoint handler function serves."""
    served: dict[str, list[str]] = {}
    for name, model in frames.MODELS.items():
        served.setdefault(endpoint.HANDLERS[model].__name__, []).append(name)
    return served


def _frame_nodes(fn: Fn, only_published: bool) -> Iterator[ast.Dict]:
    if only_published:
        for call in _calls(fn):
            if isinstance(call.func, ast.Name) and call.func.id == "Delivery":
                yield from (a for a in call.args if isinstance(a, ast.Dict))
    else:
        yield from (n for n in ast.walk(fn) if isinstance(n, ast.Dict))


def _all_functions(path: Path) -> list[Fn]:
    """The module's functions and the methods of its classes."""
    tree = _tree(path)
    methods = [item for node in tree.body if isinstance(node, ast.ClassDef)
               for item in node.body if isinstance(item, Fn)]
    return [*_functions(path).values(), *methods]


def _built_frames(path: Path, only_published: bool) -> Iterator[tuple[str, Shape]]:
    """(type, shape) of each frame a module builds as a dict literal, in a function or in a
    method."""
    for fn in _all_functions(path):
        for node in _frame_nodes(fn, only_published):
            kind, pattern = _frame_type(node), _frame_type_pattern(node)
            if kind is not None:
                yield kind, _frame_shape(path, fn, node, kind, None)
            if pattern is not None:
                for frame in _handled_by()[fn.name]:
                    kind = pattern.format(frame)
                    yield kind, _frame_shape(path, fn, node, kind, frame)


@cache
def _reply_types(frame: str) -> frozenset[str]:
    """The frame types the handler of a client frame replies with."""
    handler = _functions(ENDPOINT)[endpoint.HANDLERS[frames.MODELS[frame]].__name__]
    found = set()
    for node in ast.walk(handler):
        kind, pattern = _frame_type(node), _frame_type_pattern(node)
        found |= {kind} if kind is not None else set()
        found |= {pattern.format(frame)} if pattern is not None else set()
    return frozenset(found)


@cache
def _server_frames() -> dict[str, list[Shape]]:
    """Every frame the server builds, by type: one shape per way of building it."""
    found: dict[str, list[Shape]] = {}
    replies = set().union(*map(_reply_types, frames.MODELS))
    sources = [(p, False) for p in GATEWAY] + [(p, True) for p in [*SERVICES, *STAGES]]
    for path, only_published in sources:
        for kind, shape in _built_frames(path, only_published):
            echo: Shape = {"id": {}} if kind in replies else {}  # _handle adds the request's id
            found.setdefault(kind, []).append(_merge(shape, echo))
    return found


def _documented_elsewhere(shape: Shape) -> bool:
    """A message, conversation entry or group object: each has a table of its own."""
    keys = set(shape)
    return any(marker in keys and keys <= fields for marker, fields in [
        ("msg_id", _message_fields()),
        ("unread", _conversation_fields("group")),
        ("member_limit", _group_fields()),
    ])


def _field_names(shape: Shape) -> Iterator[str]:
    """Every key in a shape, nested ones too, except inside objects documented apart."""
    for key, inner in shape.items():
        yield key
        if inner and not _documented_elsewhere(inner):
            yield from _field_names(inner)


# --- reading the code: objects and values -----------------------------------------------


def _message_fields() -> set[str]:
    # A row with every column of the table, so that a column the view starts to read
    # shows up here as a field rather than as an AttributeError.
    row = SimpleNamespace(**{column.name: None for column in models.messages.columns})
    row.__dict__.update(conversation_id="p2p:a:b", seq=1, msg_id="m", sender_id="a",
                        content="{}", created_at_us=0)
    return set(messages.message_view(row))


def _conversation_fields(kind: str) -> set[str]:
    row = SimpleNamespace(conversation_id="c", kind=kind, peer_id="", last_seq=1, read_seq=0,
                          delivered_seq=0, unread=0, mentioned=False, last_message_at_us=0,
                          role="member", left_seq=None)
    return set(conversations._conversation_view(row, None))


def _group_fields() -> set[str]:
    row = SimpleNamespace(id="g", name="n", avatar_url=None, notice=None, extra=None,
                          owner_id="o", join_policy="free", history_visible=False,
                          mute_all=False, member_count=1, member_limit=2,
                          dismissed_at_us=None, created_at_us=0, updated_at_us=0)
    return set(groups.group_view(row, membership.OWNER))


@cache
def _system_events() -> dict[str, set[str]]:
    """Every event a system message records, with the fields it carries."""
    events: dict[str, set[str]] = {}
    for path in SERVICES:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Dict) and "event" in _dict_keys(node):
                event = _str(node.values[[_str(k) for k in node.keys].index("event")])
                assert event is not None, f"an event with no fixed name in {path.name}"
                events.setdefault(event, set()).update(_dict_keys(node) - {"type", "event"})
    return events


def _group_statuses() -> set[str]:
    """The `status` values group replies carry: per-user outcomes, joins and decisions."""
    found = {str(_str(c.args[1])) for c in _calls(_tree(SERVICES_DIR / "groups.py"))
             if isinstance(c.func, ast.Name) and c.func.id == "Outcome" and _str(c.args[1])}
    for name in ("join", "decide_request"):
        fn = _functions(SERVICES_DIR / "groups.py")[name]
        found |= {s for value in _returned(fn, None) if (s := _str(value)) is not None}
    return found


def _app_imports(path: Path) -> set[Path]:
    """The app modules a module imports."""
    found = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("app")]
        else:
            continue
        found |= {m for m in map(_module_path, names) if m is not None}
    return found


@cache
def _data_plane() -> set[Path]:
    """The gateway, the send stages and what they import, as far as the services, the
    send stages and the webhooks reach: the code a WebSocket request can run."""
    inside = [ROOT / "app" / part for part in ("gateway", "services", "moderation", "webhooks")]
    seen: set[Path] = set()
    pending = [*GATEWAY, *SEND_STAGES]
    while pending:
        path = pending.pop()
        if path in seen or not any(path.is_relative_to(d) for d in inside):
            continue
        seen.add(path)
        pending += _app_imports(path)
    return seen


def _settings_used() -> set[str]:
    """Settings the data plane reads, as `settings.name`, or by name as a string (an app's
    content-security settings default to the node's)."""
    used = set()
    for path in _data_plane():
        used |= set(re.findall(r"\b(?:settings|s)\.([a-z_]+)", path.read_text(encoding="utf-8")))
        tree = _tree(path)
        used |= {text for node in ast.walk(tree) if (text := _str(node)) is not None}
        used -= _slot_names(tree)
    return used & set(Settings.model_fields)


def _slot_names(tree: ast.AST) -> set[str]:
    """Attribute names listed in a class's __slots__: strings, but not settings read."""
    return {text for node in ast.walk(tree) if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets)
            for item in ast.walk(node.value) if (text := _str(item)) is not None}


def _rules(info: FieldInfo) -> tuple[list[Any], list[Any]]:
    """A field's constraints and allowed literal values, nested list items' too."""
    constraints, literals = list(info.metadata), []
    pending = [info.annotation]
    while pending:
        hint = pending.pop()
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Annotated:
            pending.append(args[0])
            for extra in args[1:]:
                constraints += extra.metadata if isinstance(extra, FieldInfo) else [extra]
        elif origin is typing.Literal:
            literals += list(args)
        else:
            pending += list(args)
    return constraints, literals


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
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if default is not None:
            shown = json.dumps(default)
            assert f"default {shown}" in row or f"default `{shown}`" in row, field_name
        constraints, literals = _rules(info)
        for rule in constraints:
            for attr in ("min_length", "max_length", "ge", "gt", "le", "lt"):
                if getattr(rule, attr, None) is not None:
                    assert str(getattr(rule, attr)) in row, (field_name, attr)
        for value in literals:
            assert f"`{json.dumps(value)}`" in row or f"`{value}`" in row, (field_name, value)


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
    replies = _reply_types(name)
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
    """Every field the server writes into a frame, nested ones too, is named in its section."""
    text = _frame_section(kind, "Server frames")
    for shape in _server_frames()[kind]:
        for field_name in set(_field_names(shape)) - {"id"}:
            assert f"`{field_name}`" in text, (kind, field_name)


@pytest.mark.parametrize("kind", sorted(_server_frames()))
def test_server_frame_examples_carry_every_field(kind: str) -> None:
    """For each way the server builds a frame, some example has all its fields."""
    examples = _examples(_frame_section(kind, "Server frames"))
    assert examples, f"no example of {kind}"
    assert all(example["type"] == kind for example in examples)
    for shape in _server_frames()[kind]:
        assert any(set(shape) <= set(example) for example in examples), (kind, sorted(shape))


def test_message_object_fields_are_documented_and_examples_complete() -> None:
    """The message object table and every message in the examples have exactly its fields."""
    fields = _message_fields()
    assert set(_keyed_rows(_section("The message object", 3))) == fields
    shown = _shown("msg_id", "from")
    assert shown
    for message in shown:
        assert set(message) == fields


def test_conversation_entry_fields_are_documented_and_examples_complete() -> None:
    """The conversations_ok entry table has every field; example entries have exactly the
    fields of their kind."""
    every = _conversation_fields("group")
    rows = _keyed_rows(_frame_section("conversations_ok", "Server frames"))
    assert set(rows) == every
    for only_groups in every - _conversation_fields("p2p"):
        assert "group" in " ".join(rows[only_groups]), only_groups
    shown = _shown("unread", "kind")
    assert {entry["kind"] for entry in shown} >= {"p2p", "system", "group"}
    for entry in shown:
        assert set(entry) == _conversation_fields(entry["kind"]), entry["conversation_id"]


def test_group_object_fields_are_documented_and_examples_complete() -> None:
    """The group object table and every group in the examples have exactly its fields
    (`my_role` only where the server adds it)."""
    fields = _group_fields()
    assert set(_keyed_rows(_section("The group object", 3))) == fields
    shown = _shown("member_limit", "join_policy")
    assert shown
    for group in shown:
        assert set(group) in (fields, fields - {"my_role"}), group["group_id"]


def test_every_system_event_is_documented_with_its_fields() -> None:
    """The system message table has a row per event naming each of its fields, and the
    examples of system messages carry exactly those fields."""
    events = _system_events()
    rows = _keyed_rows(_section("System messages", 3))
    assert set(rows) == set(events)
    for event, fields in events.items():
        for field_name in fields:
            assert f"`{field_name}`" in " ".join(rows[event]), (event, field_name)
    shown = [c for c in _shown("type", "event") if c["type"] == "system"]
    assert shown
    for content in shown:
        assert set(content) == {"type", "event", *events[content["event"]]}, content


def test_content_kinds_and_mention_rules_are_documented() -> None:
    """The content section shows the tombstone, the system kind and the mention limits."""
    text = _section("Content", 3)
    tombstone = json.loads(recall.TOMBSTONE)
    assert f"`{json.dumps(tombstone)}`" in text
    for recalled in _shown("type"):
        if recalled["type"] == "recalled":
            assert recalled == tombstone
    assert '`{"type": "system"' in text
    assert f'`"{messages.MENTION_ALL}"`' in text
    assert f"at most {messages.MENTIONS_MAX}" in text


def test_roles_join_policies_and_statuses_are_documented() -> None:
    """Each role, join policy and group `status` value is named where it is explained."""
    rights = _section("Roles and rights", 3)
    for role in membership.RANK:
        assert f"`{role}`" in rights, role
    policies = _section("Join policies", 3)
    for policy in groups.JOIN_POLICIES:
        assert f"`{policy}`" in policies, policy
    replies = _section("Server frames")
    for status in _group_statuses():
        assert f"`{status}`" in replies, status


def test_every_group_route_of_the_rest_api_is_named() -> None:
    """The page names each REST route the App Server uses for groups, recall and receipts."""
    text = _section("Groups")
    for route in group_routes.router.routes:
        for method in sorted(getattr(route, "methods", ())):
            assert f"`{method} {getattr(route, 'path', '')}`" in text, route


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
    """Every error code raised anywhere in app/ has a row in one of the two tables."""
    assert code in _error_rows(), f"{code!r} is raised in app/ but has no row in {DOC.name}"


@pytest.mark.parametrize("code", sorted({
    r.code for path in [*GATEWAY, *SEND_STAGES] for r in _raised_by(path)
}))
def test_codes_of_the_gateway_and_send_stages_are_in_the_socket_table(code: str) -> None:
    """A code the gateway or a send stage sends reaches WebSocket clients, so its row is in
    the main table, not among the REST-only codes."""
    assert code in _socket_error_rows(), code


def test_no_code_is_in_both_tables() -> None:
    """A code has one row: in the main table, or among the REST-only codes."""
    assert not set(_socket_error_rows()) & set(_rest_error_rows())


@pytest.mark.parametrize("code", sorted({code for code, _ in _raised()}))
def test_error_table_says_whether_each_code_closes(code: str) -> None:
    """In the main table the Closes cell names every close code a code is sent with, or
    says no; a REST-only code closes nothing, and its row gives its HTTP status."""
    closes = {close for raised, close in _raised() if raised == code}
    if code in _rest_error_rows():
        assert closes == {None}, f"{code!r} closes a connection but is listed as REST-only"
        cell = _rest_error_rows()[code][2]
        for status in _statuses()[code]:
            assert str(status) in cell, (code, status)
        return
    row = _socket_error_rows().get(code)
    assert row is not None, f"{code!r} has no row in {DOC.name}"
    cell = row[2]
    for close in (c for c in closes if c is not None):
        assert str(close.value) in cell, (code, close)
    if closes == {None}:
        assert cell.startswith("no"), code


def test_documented_error_codes_exist_in_the_code() -> None:
    """No error table row names a code that nothing in app/ uses."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "app").rglob("*.py"))
    stale = [code for code in _error_rows() if f'"{code}"' not in source]
    assert not stale, f"no code in app/ uses {stale}"


@pytest.mark.parametrize("key", sorted(_error_data_keys()))
def test_every_error_data_key_is_documented(key: str) -> None:
    """Each key an error can carry in `data` is named as data.<key> in the error codes."""
    assert f"`data.{key}`" in _section("Error codes"), key


# --- limits and the page itself ---------------------------------------------------------


def test_limits_table_defaults_match_settings() -> None:
    """Each limit row names a real setting and shows its default."""
    rows = [row for row in _rows(_section("Limits")) if row[2].startswith("`PARLEY_")]
    assert rows
    for _, default, setting in rows:
        name = setting.strip("`").removeprefix("PARLEY_").lower()
        assert name in Settings.model_fields, setting
        value = Settings.model_fields[name].default
        if isinstance(value, str):
            assert default.startswith(f"`{value}`"), setting
            continue
        shown = re.match(r"[\d.]+", default)
        assert shown and float(shown.group()) == value, setting


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
