"""Links: found however they are written, hosts brought to one form, and checked against
domain lists where an entry covers its subdomains."""

from __future__ import annotations

import pytest

from app.moderation.links import (
    DomainLists,
    DomainRule,
    canonical_host,
    check_links,
    domain_entry,
    extract_links,
)

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
