"""Links: found however they are written, hosts brought to one form, and checked against
domain lists where an entry covers its subdomains."""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from urllib.parse import unquote

import pytest

from app.moderation import links
from app.moderation.links import (
    DomainLists,
    DomainRule,
    canonical_host,
    check_links,
    domain_entry,
    extract_links,
)
from tests.moderation import generated

EXAMPLE_CN = "xn--fsqu00a.xn--fiqs8s"  # the punycode of a two-character host under .cn's IDN


def _links(text: str) -> list[tuple[str, str]]:
    return [(link.host, text[link.start : link.end]) for link in extract_links(text)]


@pytest.mark.parametrize(("text", "host", "typed"), [
    ("see https://Example.COM/a?b=1 now", "example.com", "https://Example.COM/a?b=1"),
    ("go to www.evil.com.", "www.evil.com", "www.evil.com"),
    ("evil.com/path?q=1", "evil.com", "evil.com/path?q=1"),
    ("http://trusted.com@evil.com:8080/", "evil.com", "http://trusted.com@evil.com:8080/"),
    ("ftp://user:pw@evil.com", "evil.com", "ftp://user:pw@evil.com"),
    ("mail bob@evil.com", "evil.com", "evil.com"),
    ("sub.evil.com:65535/x", "sub.evil.com", "sub.evil.com:65535/x"),
    ("http://%65vil%2Ecom/", "evil.com", "http://%65vil%2Ecom/"),
    ("http://\u4f8b\u5b50.\u4e2d\u56fd/\u8def", EXAMPLE_CN, "http://\u4f8b\u5b50.\u4e2d\u56fd/\u8def"),
    ("\u4f8b\u5b50.\u4e2d\u56fd", EXAMPLE_CN, "\u4f8b\u5b50.\u4e2d\u56fd"),
    (f"HTTP://{EXAMPLE_CN.upper()}/", EXAMPLE_CN, f"HTTP://{EXAMPLE_CN.upper()}/"),
    ("\N{FULLWIDTH LATIN SMALL LETTER E}vil\N{FULLWIDTH FULL STOP}com", "evil.com",
     "\N{FULLWIDTH LATIN SMALL LETTER E}vil\N{FULLWIDTH FULL STOP}com"),
    ("evil\N{IDEOGRAPHIC FULL STOP}com", "evil.com", "evil\N{IDEOGRAPHIC FULL STOP}com"),
    ("e\N{ZERO WIDTH SPACE}vil.com", "evil.com", "e\N{ZERO WIDTH SPACE}vil.com"),
    ("\u8bf7\u8bbf\u95eeevil.com\u83b7\u53d6", "evil.com", "evil.com"),
    ("http://evil.com\u83b7\u53d6", "evil.com", "http://evil.com"),
    ("http://0x7f.1/", "127.0.0.1", "http://0x7f.1/"),
    ("http://2130706433/x", "127.0.0.1", "http://2130706433/x"),
    ("1.2.3.4:8080/admin", "1.2.3.4", "1.2.3.4"),
    ("http://[::1]:80/", "::1", "http://[::1]:80/"),
    ("(evil.com/x).", "evil.com", "evil.com/x"),
    ("evil.zip", "evil.zip", "evil.zip"),
])
def test_links_are_found_in_each_form(text: str, host: str, typed: str) -> None:
    """Each form yields the link's canonical host and the typed characters of the link."""
    assert _links(text) == [(host, typed)]


@pytest.mark.parametrize("text", [
    "pi is 3.14", "e.g. this", "see readme.txt", "v1.2 is out", "1.2.3.4 alone",
    "\u6211\u5f88\u597d\N{IDEOGRAPHIC FULL STOP}\u4f60\u5462", "a.b", "hello . world",
])
def test_text_that_is_not_a_link_yields_none(text: str) -> None:
    """Numbers, abbreviations, file names and Chinese sentence ends are not links."""
    assert _links(text) == []


def test_several_links_come_back_in_order() -> None:
    """Every link of a text is found once, in the order typed."""
    assert [h for h, _ in _links("a.com then http://b.org/x and c.net")] == [
        "a.com", "b.org", "c.net"]


@pytest.mark.parametrize(("raw", "host"), [
    ("EVIL.com.", "evil.com"), ("\u4f8b\u5b50.\u4e2d\u56fd", EXAMPLE_CN),
    ("[2001:DB8::1]", "2001:db8::1"), ("017700000001", "127.0.0.1"), ("a..b", None),
    ("bad host", None), ("", None),
])
def test_canonical_host(raw: str, host: str | None) -> None:
    """Hosts are lower case, punycode, dotted-quad or compressed IPv6; non-hosts are None."""
    assert canonical_host(raw) == host


@pytest.mark.parametrize(("entry", "domain"), [
    ("*.Evil.com", "evil.com"), ("https://evil.com/path", "evil.com"),
    ("evil.com:8443", "evil.com"), ("user@evil.com", "evil.com"),
    ("\u4f8b\u5b50.\u4e2d\u56fd", EXAMPLE_CN), ("not a domain", None),
])
def test_list_entries_are_taken_in_the_forms_operators_type(entry: str, domain: str | None
                                                            ) -> None:
    """Wildcards, URLs, ports and userinfo are stripped from an entry."""
    assert domain_entry(entry) == domain


LISTS = DomainLists([
    DomainRule("evil.com", "block", "phishing"),
    DomainRule("docs.evil.com", "allow", "link"),
    DomainRule("10.0.0.1", "block", "internal"),
    DomainRule("good.org", "allow", "link"),
])


@pytest.mark.parametrize(("host", "entry"), [
    ("evil.com", "evil.com"), ("a.b.evil.com", "evil.com"), ("docs.evil.com", "docs.evil.com"),
    ("x.docs.evil.com", "docs.evil.com"), ("notevil.com", None), ("evil.com.au", None),
    ("10.0.0.1", "10.0.0.1"), ("1.10.0.0.1", None), ("com", None),
])
def test_an_entry_covers_its_subdomains_and_the_most_specific_wins(host: str,
                                                                   entry: str | None) -> None:
    """A lookup finds the host or its nearest listed parent; IP addresses only exactly."""
    found = LISTS.lookup(host)
    assert (found.domain if found else None) == entry


def test_check_links_applies_each_lists_action() -> None:
    """A blocked domain gets the block action; a domain on no list the unlisted action."""
    text = "x.evil.com docs.evil.com good.org other.net"
    hits = check_links(text, LISTS, "review", "mask")
    assert [(h.action, h.category, h.rule, text[h.start:h.end]) for h in hits] == [
        ("review", "phishing", "evil.com", "x.evil.com"),
        ("mask", "unlisted", "other.net", "other.net"),
    ]
    assert [h.rule for h in check_links(text, LISTS, "block", "none")] == ["evil.com"]


def _the_long_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make extract_links work as its patterns and steps are defined: every pattern
    searched over the whole text, every character cleaned and mapped back on its own,
    and no shortcut for Han characters."""
    never = re.compile(r"(?!)")
    monkeypatch.setattr(links, "_schemes", links._SCHEME.finditer)
    monkeypatch.setattr(links, "_dotted_words", lambda clean: [(0, len(clean))])
    monkeypatch.setattr(links, "_clean", lambda text: "".join(map(links._clean_char, text)))
    monkeypatch.setattr(links, "_origin", lambda text: [
        i for i, ch in enumerate(text) for _ in links._clean_char(ch)])
    monkeypatch.setattr(links, "_HAN", never)
    monkeypatch.setattr(links, "_HAN_HOST", never)


@pytest.mark.parametrize("ascii_only", [True, False])
def test_the_shortcuts_find_what_the_long_way_finds(ascii_only: bool) -> None:
    """Over many made-up texts, searching only the words that hold a dot and only just
    before each "://", cleaning by table, and the Han shortcuts find the same links,
    at the same places, as the long way."""
    made = generated.texts(generated.LINK_PIECES, 1500, seed=3, ascii_only=ascii_only)
    fast = [extract_links(text) for text in made]
    with pytest.MonkeyPatch.context() as monkeypatch:
        _the_long_way(monkeypatch)
        reference = [extract_links(text) for text in made]
    assert sum(map(len, reference)) > len(made) // 2  # the texts hold links to find
    for text, got, expected in zip(made, fast, reference, strict=True):
        assert got == expected, text


def _reference_host(raw: str) -> str | None:
    """canonical_host as the module doc states it, every step taken for every host."""
    host = unicodedata.normalize("NFKC", unquote(raw))
    host = host.translate(str.maketrans("\u3002\uff0e\uff61", "...")).strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            return None
    if re.fullmatch(r"[0-9][0-9a-fx.]*", host):
        try:
            return str(ipaddress.IPv4Address(socket.inet_aton(host)))
        except OSError:
            pass
    labels = host.split(".")
    if not host or len(host) > 253 or not all(labels):
        return None
    out = []
    for label in labels:
        if label.isascii():
            if not re.fullmatch(r"[a-z0-9_\-]{1,63}", label):
                return None
            out.append(label)
            continue
        try:
            out.append(label.encode("idna").decode("ascii"))
        except UnicodeError:
            return None
    return ".".join(out)


@pytest.mark.parametrize("ascii_only", [True, False])
def test_canonical_host_of_plain_ascii_is_that_of_every_step(ascii_only: bool) -> None:
    """Over many made-up hosts, the shortcut for ASCII hosts changes no answer."""
    pieces = [*generated.LINK_PIECES, "a" * 63, "b" * 64, "9", "Z"]
    for raw in generated.texts(pieces, 3000, seed=4, ascii_only=ascii_only, longest=8):
        assert canonical_host(raw) == _reference_host(raw), raw
    assert canonical_host(("a" * 60 + ".") * 5 + "com") is None  # over 253 characters


def test_the_han_shortcut_for_top_level_domains_agrees_with_idna() -> None:
    """For labels of Han characters across the whole block, and the listed ones, the
    shortcut gives the answer that canonical_host and the punycode list give."""
    labels = [*links._UNICODE_TLD_LABELS, "\u4e2d\u56fd\u4e2d\u56fd", "\u4e2d"]
    labels += [chr(c) + chr(c + 1) for c in range(0x4E00, 0x9FFF, 97)]
    for label in labels:
        long_way = (canonical_host(label) or "") in links._UNICODE_TLDS
        assert links._bare_tld_ok(f"x.{label}") is long_way, label
