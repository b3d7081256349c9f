"""Content filter cost: one check of a 1 KiB message against 10,000 keywords and 10,000
blocked domains, and the send rate with filtering on against off, as a ratio.

    python -m bench.content_filter [--messages 400] [--rules 10000] [--check-only]

The check is timed in this process on the compiled rules (what a node holds), on plain
text, on text with two links (the same in every message, as when one URL is shared
around), and on text with two links whose hosts differ from message to message. The
send rate is measured against a real server, one app with the lists and one without, in
the same run. --rules takes that many keywords and domains instead (keywords 70 % Latin
and 30 % Chinese, as in the full lists); --check-only times the check alone and prints
it. Otherwise writes bench/results/content_filter.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Settings
from app.moderation.keywords import KeywordRule
from app.moderation.links import DomainRule
from app.moderation.policy import ModerationSettings, Policy
from tests.support import Api, Client, Server, TestDatabase

RESULTS = Path(__file__).resolve().parent / "results"
HAN = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]


def _lists(rng: random.Random) -> tuple[list[str], list[str]]:
    def word(n: int) -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(n))

    words = [word(rng.randint(5, 10)) for _ in range(7000)]
    words += ["".join(rng.choice(HAN) for _ in range(rng.randint(2, 4))) for _ in range(3000)]
    return words, [f"{word(8)}.com" for _ in range(10000)]


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(n))


def _message(rng: random.Random, links: bool, new_hosts: bool = False) -> str:
    parts: list[str] = []
    while sum(len(p.encode()) + 1 for p in parts) < 1024:
        parts.append(_word(rng, rng.randint(2, 9)))
        if links and len(parts) in (5, 40) and new_hosts:
            parts.append(f"https://{_word(rng, 4)}.example.org/item see "
                         f"{_word(rng, 4)}.example.com")
        elif links and len(parts) in (5, 40):
            parts.append("https://shop.example.org/item see docs.example.com")
    text = " ".join(parts)
    while len(text.encode()) > 1024:
        text = text[:-1]
    return text


def check_times(words: list[str], domains: list[str], rng: random.Random) -> dict[str, Any]:
    settings = ModerationSettings.effective(Settings(), {})
    started = time.perf_counter()
    policy = Policy.build(1, settings, [KeywordRule(w, "c", "block") for w in words],
                          [DomainRule(d, "block", "x") for d in domains])
    build_ms = (time.perf_counter() - started) * 1000
    out: dict[str, Any] = {"build_ms": round(build_ms, 1)}
    cases = (("plain", False, False), ("two_links", True, False),
             ("two_new_links", True, True))
    for name, links, new_hosts in cases:
        texts = [_message(rng, links, new_hosts) for _ in range(300)]
        for text in texts[:30]:
            policy.inspect(text)
        runs = []
        for text in texts:
            t = time.perf_counter()
            policy.inspect(text).masked()
            runs.append(time.perf_counter() - t)
        runs.sort()
        out[f"{name}_median_us"] = round(runs[len(runs) // 2] * 1e6, 1)
        out[f"{name}_p99_us"] = round(runs[int(len(runs) * 0.99)] * 1e6, 1)
    return out


async def send_rate(words: list[str], domains: list[str], count: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    db = await TestDatabase.create("sqlite", folder)
    # Rate limits off: this measures the filter, not the anti-spam pacing.
    server = Server.start(db, folder, log_level="WARNING", send_rate_per_second=1000,
                          send_burst=10000, flood_conversations=0, flood_strangers=0,
                          max_frames_per_second=100000)
    api = Api(server)
    try:
        rates = {}
        for label, filtered in (("off", False), ("on", True)):
            app = await api.create_app(label)
            if filtered:
                body = "\n".join(f"{w}\tc\tblock" for w in words).encode()
                await api.call(app, "POST", "/v1/moderation/keywords/import", content=body)
                for start in range(0, len(domains), 1000):
                    await api.call(app, "POST", "/v1/moderation/domains", json={"domains": [
                        {"domain": d, "list": "block"} for d in domains[start:start + 1000]]})
            a, b = await api.import_users(app, "a", "b")
            client = await Client.login(server, app, await api.token(app, a))
            text = _message(random.Random(1), links=True)
            started = time.perf_counter()
            for i in range(count):
                reply = await client.request({"type": "send", "to": b, "client_msg_id": f"m{i}",
                                              "content": {"type": "text", "text": text}})
                assert reply["type"] == "send_ok", reply
            rates[label] = count / (time.perf_counter() - started)
            await client.close()
        return {"sends_per_s_off": round(rates["off"], 1),
                "sends_per_s_on": round(rates["on"], 1),
                "ratio_on_to_off": round(rates["on"] / rates["off"], 3)}
    finally:
        await api.aclose()
        server.stop()
        await db.drop()


def _fewer(words: list[str], domains: list[str], rules: int) -> tuple[list[str], list[str]]:
    """``rules`` keywords, Latin and Chinese in the full lists' proportions, and domains."""
    latin = rules * 7 // 10
    return words[:latin] + words[7000 : 7000 + rules - latin], domains[:rules]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--rules", type=int, default=10000, choices=range(1, 10001),
                        metavar="1..10000")
    parser.add_argument("--check-only", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    words, domains = _fewer(*_lists(rng), args.rules)
    result = {"scenario": "content_filter", "keywords": len(words), "domains": len(domains),
              **check_times(words, domains, rng)}
    if args.check_only:  # a quick look while working: no result file is written
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    result.update(asyncio.run(send_rate(words, domains, args.messages)))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "content_filter.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
