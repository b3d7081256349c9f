"""Links in text: finding them however they are written, and checking their hosts
against an app's domain lists.

:func:`check_links` is pure and takes any text, so text from elsewhere (a QR code,
once media uploads exist) goes through the same check as a message.

A link is found with a scheme (``https://user@例子.中国:8443/x``) or without one
(``www.example.com``, ``evil.com/x``, ``bob@evil.com``). Its host is brought to one
form before lookup: percent-decoded, NFKC, lower case, IDNA dots made plain, every
non-ASCII label in punycode, and numeric IPv4 forms (``0x7f.1``, ``2130706433``) as
dotted quads. A list entry covers its domain and every subdomain; the most specific
entry wins, so an allowed ``docs.example.com`` stands inside a blocked ``example.com``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Literal, NamedTuple
from urllib.parse import unquote

from app.moderation.normalise import CharMemo, is_unspaced
from app.moderation.rules import Action, Hit

ListName = Literal["block", "allow"]
UnlistedAction = Literal["none", "block", "mask", "review"]
UNLISTED = "unlisted"  # the category of a link whose domain is on no list

# The full stops IDNA treats as label separators (ideographic, full-width, half-width).
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_SCHEME_MAX = 31  # characters a scheme may have, as _SCHEME reads one
_SCHEME = re.compile(r"(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]{0,30}://", re.I)
_AUTHORITY_END = re.compile(r"[/?#\\\s<>\"'`]")
_URL_END = re.compile(r"[\s<>\"'`]")
# The host is group 1.
_BARE = re.compile(r"(?<![\w.\-])((?:[\w\-]+\.)+[\w\-]+)(?::\d{1,5})?(?:[/?#][^\s<>\"'`]*)?")
# A bare dotted quad is a link only with a port or a path: alone it is as likely a
# version number.
_BARE_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?=[:/])")
_TRAILING = ".,;:!?)]}'\""
_ASCII_LABEL = re.compile(r"[a-z0-9_\-]+")
_ASCII_HOST = re.compile(r"[a-z0-9_\-]{1,63}(?:\.[a-z0-9_\-]{1,63})*")
_NUMERIC_HOST = re.compile(r"[0-9][0-9a-fx.]*")
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9\-]+")
# Names that end like a domain but are nearly always files. The real top-level
# domains .zip, .mov and .md are left out on purpose: they are used for phishing.
_FILE_ENDINGS = frozenset((
    "txt", "log", "csv", "json", "xml", "yml", "yaml", "ini", "cfg", "conf", "pdf", "doc",
    "docx", "xls", "xlsx", "ppt", "pptx", "rtf", "jpg", "jpeg", "png", "gif", "bmp", "webp",
    "svg", "mp3", "mp4", "wav", "avi", "mkv", "exe", "dll", "bat", "sh", "py", "js", "ts",
    "css", "html", "htm", "php", "rb", "go", "rs", "java", "jar", "tar", "gz", "tgz", "bz2",
    "rar",
))
# Top-level domains in other scripts that a link without a scheme may end in, in
# punycode: China, company, network, online, website, shop, mall, group, Chinese web,
# Hong Kong, Taiwan, Singapore, Korea, and Russia, Belarus, Ukraine, Serbia and
# Kazakhstan in Cyrillic. Others are found only with a scheme, so that the end of a
# Chinese sentence is not read as a host.
_UNICODE_TLDS = frozenset((
    "xn--fiqs8s", "xn--fiqz9s", "xn--55qx5d", "xn--io0a7i", "xn--od0alg", "xn--3ds443g",
    "xn--ses554g", "xn--hxt814e", "xn--czru2d", "xn--3bst00m", "xn--fiq228c5hs",
    "xn--j6w193g", "xn--kprw13d", "xn--kpry57d", "xn--yfro4i67o", "xn--3e0b707e",
    "xn--p1ai", "xn--90ais", "xn--j1amh", "xn--90a3ac", "xn--80ao21a",
))
_UNICODE_TLD_LABELS = frozenset(tld.encode().decode("idna") for tld in _UNICODE_TLDS)
_HAN = re.compile(r"[\u4e00-\u9fff]+")  # CJK unified ideographs: NFKC and nameprep keep them
_HAN_HOST = re.compile(r"[\u4e00-\u9fff.\-]+")


class Link(NamedTuple):
    """A link found in a text. A tuple, since a check makes one for every link it sees
    and a frozen dataclass costs several times as much to make."""

    host: str  # in canonical form (see canonical_host)
    start: int  # the typed characters [start, end) of the whole link
    end: int


_START = attrgetter("start")


@dataclass(frozen=True, slots=True)
class DomainRule:
    domain: str  # in canonical form
    list: ListName
    category: str


def canonical_host(raw: str) -> str | None:
    """The one form of a host that lists are keyed by; None when it cannot be a host."""
    host = raw
    if not raw.isascii() or "%" in raw:
        host = unicodedata.normalize("NFKC", unquote(raw)).translate(_DOTS)
    host = host.strip().lower().rstrip(".")
    if host[:1].isalpha() and host.isascii():
        # The usual host: starting with a letter, it is no IP address, and its labels
        # are checked as the loop below would, in one pass of C.
        return host if len(host) <= 253 and _ASCII_HOST.fullmatch(host) else None
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            return None
    if _NUMERIC_HOST.fullmatch(host):
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
            if not _ASCII_LABEL.fullmatch(label) or len(label) > 63:
                return None
            out.append(label)
            continue
        try:
            out.append(label.encode("idna").decode("ascii"))
        except UnicodeError:
            return None
    return ".".join(out)


def domain_entry(raw: str) -> str | None:
    """A list entry as typed by an operator (``*.evil.com``, ``https://evil.com/x``)
    in canonical form."""
    text = raw.strip()
    if not text or any(c.isspace() for c in text):
        return None
    if "://" in text:
        text = text.split("://", 1)[1]
    text = _AUTHORITY_END.split(text, maxsplit=1)[0].rsplit("@", 1)[-1]
    text = text.removeprefix("*.")
    if not text.startswith("["):
        text = text.split(":", 1)[0]
    return canonical_host(text)


def _may_hold_links(text: str) -> bool:
    """False for text that cannot hold a link: no dot and no "://" even after NFKC. Most
    chat messages stop here, at the cost of one normalisation in C."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return "." in text or "://" in text or "\u3002" in text


def _clean_char(ch: str) -> str:
    if unicodedata.category(ch) == "Cf":
        return ""
    return unicodedata.normalize("NFKC", ch.translate(_DOTS)).translate(_DOTS)


_CLEANED = CharMemo(_clean_char)


def _clean(text: str) -> str:
    """NFKC per character, IDNA dots made plain, format characters dropped."""
    return text if text.isascii() else text.translate(_CLEANED)


def _origin(text: str) -> Sequence[int]:
    """The typed index of each character of ``_clean(text)``: wanted only for the
    links found, so not worked out for the many texts that hold none."""
    if text.isascii():
        return range(len(text))
    return [i for i, ch in enumerate(text) for _ in _CLEANED[ord(ch)]]


def _script_runs(host: str) -> list[tuple[int, int]]:
    """[a, b) pieces of a host split where ASCII letters meet an unspaced script, so
    that ``访问evil.com获取`` yields ``evil.com``."""
    if host.isascii() or _HAN_HOST.fullmatch(host):
        return [(0, len(host))]
    runs, start = [], 0
    for k in range(1, len(host)):
        left, right = host[k - 1], host[k]
        if left in ".-" or right in ".-":
            continue
        if is_unspaced(left) != is_unspaced(right):
            runs.append((start, k))
            start = k
    runs.append((start, len(host)))
    return runs


def _authority_host(authority: str) -> tuple[int, int]:
    """Where the host is inside an authority: after the last '@', before a port."""
    at = authority.rfind("@") + 1
    if authority.startswith("[", at):
        close = authority.find("]", at)
        return at, (close + 1 if close != -1 else len(authority))
    colon = authority.find(":", at)
    return at, (colon if colon != -1 else len(authority))


def _trim(clean: str, start: int, end: int) -> int:
    while end > start and clean[end - 1] in _TRAILING:
        end -= 1
    return end


def _with_scheme(clean: str) -> list[tuple[str, int, int]]:
    return [_scheme_link(clean, match) for match in _schemes(clean)]


def _schemes(clean: str) -> list[re.Match[str]]:
    """_SCHEME's matches, looked for only just before each "://": the same matches as
    _SCHEME.finditer over the whole text, which costs as much as the rest of a check.
    A scheme holds no ':' and no space, so one that ends at a "://" starts after the
    last space before it, at most _SCHEME_MAX characters before it, and none starts
    before one "://" and ends at a later one."""
    found = []
    done = 0
    separator = clean.find("://")
    while separator != -1:
        earliest = max(done, separator - _SCHEME_MAX)
        earliest = clean.rfind(" ", earliest, separator) + 1 or earliest
        match = _SCHEME.search(clean, earliest, separator + 3)
        if match is not None:
            found.append(match)
            done = match.end()
        separator = clean.find("://", max(separator + 1, done))
    return found


def _scheme_link(clean: str, match: re.Match[str]) -> tuple[str, int, int]:
    """The host a _SCHEME match is followed by, and where its link starts and ends."""
    begin = match.end()
    stop = _AUTHORITY_END.search(clean, begin)
    a, b = _authority_host(clean[begin : stop.start() if stop else len(clean)])
    host = clean[begin + a : begin + b]
    first = None if host.isascii() else next(
        (r for r in _script_runs(host) if "." in host[r[0] : r[1]]), None)
    if first is not None and first[1] < len(host):
        # A host run into following Chinese text: the link ends with the host.
        return host[first[0] : first[1]], match.start(), begin + a + first[1]
    stop = _URL_END.search(clean, begin)
    return host, match.start(), _trim(clean, begin, stop.start() if stop else len(clean))


def _bare_tld_ok(host: str) -> bool:
    tld = host[host.rfind(".") + 1 :].lower()
    if _HAN.fullmatch(tld):
        # Every step of canonical_host leaves Han characters as they are, up to the
        # punycode, which tells labels apart as well as they do: the same answer as
        # below, where IDNA costs as much as a whole check of ASCII text, for the end
        # of every Chinese sentence that a full stop runs into the next.
        return tld in _UNICODE_TLD_LABELS
    if not tld.isascii():
        return (canonical_host(tld) or "") in _UNICODE_TLDS
    return bool(_TLD.fullmatch(tld)) and tld not in _FILE_ENDINGS


def _dotted_words(clean: str) -> list[tuple[int, int]]:
    """Stretches [a, b) of ``clean`` between spaces that hold a '.': the only places a
    link without a scheme can be. Neither _BARE nor _BARE_IPV4 matches across white
    space or without a dot, so searching these alone finds what a search of the whole
    text finds, at the cost of the few words that have a dot. Other white space
    inside a stretch only makes it longer than it need be."""
    words = []
    searched = 0
    dot = clean.find(".")
    while dot != -1:
        start = clean.rfind(" ", searched, dot) + 1 or searched
        searched = clean.find(" ", dot)
        if searched == -1:
            searched = len(clean)
        words.append((start, searched))
        dot = clean.find(".", searched)
    return words


def _without_scheme(
    clean: str, taken: list[tuple[int, int]], words: list[tuple[int, int]]
) -> list[tuple[str, int, int]]:
    found = []
    for a, b in words:
        for match in _BARE.finditer(clean, a, b):
            if not (taken and _inside(match.start(), taken)):
                link = _bare_link(clean, match)
                if link is not None:
                    found.append(link)
    for a, b in words:
        for match in _BARE_IPV4.finditer(clean, a, b):
            if not (taken and _inside(match.start(), taken)):
                found.append((match.group(), match.start(), match.end()))
    return found


def _inside(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= position < b for a, b in spans)


def _bare_link(clean: str, match: re.Match[str]) -> tuple[str, int, int] | None:
    """The first piece of a _BARE match's host (see _script_runs) that ends in a
    top-level domain, and where its link starts and ends."""
    host_part, start = match.group(1), match.start()
    for a, b in _script_runs(host_part):
        host = host_part[a:b].strip(".-")
        if "." in host and _bare_tld_ok(host):
            end = start + b if b < len(host_part) else match.end()
            return host, start + a, _trim(clean, start + a, end)
    return None


def extract_links(text: str) -> list[Link]:
    """Every link in ``text`` with its host in canonical form, in order."""
    if not _may_hold_links(text):
        return []
    clean = _clean(text)
    candidates = _with_scheme(clean)
    taken = [(start, end) for _, start, end in candidates]
    # A word inside a link with a scheme holds nothing _without_scheme would keep.
    words = [(a, b) for a, b in _dotted_words(clean)
             if not any(start <= a and b <= end for start, end in taken)]
    candidates += _without_scheme(clean, taken, words)

    found = []
    origin: Sequence[int] | None = None
    for raw_host, start, end in candidates:
        host = canonical_host(raw_host)
        if host is not None and end > start:
            if origin is None:
                origin = _origin(text)
            found.append(Link(host, origin[start], origin[end - 1] + 1))
    found.sort(key=_START)
    return found


class DomainLists:
    """An app's allow and block entries; a domain is on at most one of them."""

    def __init__(self, rules: Iterable[DomainRule]) -> None:
        self._by_domain = {rule.domain: rule for rule in rules}

    def __len__(self) -> int:
        return len(self._by_domain)

    def lookup(self, host: str) -> DomainRule | None:
        """The most specific entry covering ``host``: itself, else its nearest parent."""
        rule = self._by_domain.get(host)
        if rule is not None or not self._by_domain or _is_ip(host):
            return rule
        dot = host.find(".")
        while dot != -1:
            rule = self._by_domain.get(host[dot + 1 :])
            if rule is not None:
                return rule
            dot = host.find(".", dot + 1)
        return None


def _is_ip(host: str) -> bool:
    return host[-1:].isdigit() or ":" in host


def check_links(
    text: str, lists: DomainLists, block_action: Action, unlisted_action: UnlistedAction
) -> list[Hit]:
    """A hit for each link to a blocked domain, and, unless ``unlisted_action`` is
    "none", for each link to a domain that is not on the allow list."""
    hits = []
    for link in extract_links(text):
        rule = lists.lookup(link.host)
        if rule is not None and rule.list == "block":
            hits.append(Hit("link", block_action, rule.category, rule.domain,
                            link.start, link.end))
        elif rule is None and unlisted_action != "none":
            hits.append(Hit("link", unlisted_action, UNLISTED, link.host, link.start, link.end))
    return hits
