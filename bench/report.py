"""The suite's Markdown table: one row per measure, Parley beside its baseline and the
issue's target."""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, str, str, str, str]
HEADER = ("scenario", "measure", "Parley", "baseline", "ratio", "target", "met")


def _idle(r: dict[str, Any]) -> list[Row]:
    return [("idle connections", f"KiB per idle connection at {row['connections']:,}",
             f"{row['parley']['kib_per_connection']}",
             f"relay {row['relay']['kib_per_connection']}",
             f"{row['ratio']}", "at most 1.5 of relay", _yes(row["ratio"] <= 1.5))
            for row in r["rows"]]


def _one_to_one(r: dict[str, Any]) -> list[Row]:
    p, b = r["parley"], r["relay"]
    rows: list[Row] = [("1:1 messages", "saturated delivered msg/s", f"{p['saturated_per_s']:,}",
                        f"relay {b['saturated_per_s']:,}", f"{r['ratio']}", "at least 0.2 of relay",
                        _yes(r["ratio"] >= 0.2))]
    bad = {k: p[k] + b[k] for k in ("lost", "duplicated", "out_of_order")}
    rows.append(("1:1 messages", "lost / duplicated / out of order",
                 f"{p['lost']} / {p['duplicated']} / {p['out_of_order']}",
                 f"relay {b['lost']} / {b['duplicated']} / {b['out_of_order']}", "", "0",
                 _yes(not any(bad.values()))))
    rows.append(("1:1 messages", "sends refused with an error", _errors(p), _errors(b), "",
                 "0", _yes(not p.get("errors") and not b.get("errors"))))
    for step in p["steps"]:
        rows.append(("1:1 messages", f"p50 / p99 at {step['offered_per_s']:,} msg/s offered",
                     f"{step['p50_ms']} / {step['p99_ms']} ms", "", "",
                     "p99 < 50 ms at 2,000" if step["offered_per_s"] == 2000 else "", ""))
    return rows


def _group(r: dict[str, Any]) -> list[Row]:
    return [("group fan-out", f"p50 / p99 to last of {r['online']} online, {r['rate_per_s']}/s",
             f"{r['p50_to_last_ms']} / {r['p99_to_last_ms']} ms", "no baseline yet", "",
             "p99 < 100 ms", _yes((r["p99_to_last_ms"] or 1e9) < 100)),
            ("group fan-out", "lost deliveries", str(r["lost_deliveries"]), "", "", "0",
             _yes(r["lost_deliveries"] == 0))]


def _filter(r: dict[str, Any]) -> list[Row]:
    return [("content filter", "one check, 1 KiB, two links (median)",
             f"{r['two_links_median_us']} µs", "", "", "< 50 µs",
             _yes(r["two_links_median_us"] < 50)),
            ("content filter", "sends/s filter on vs off", f"{r['sends_per_s_on']}",
             f"off {r['sends_per_s_off']}", f"{r['ratio_on_to_off']}", "", "")]


def _errors(result: dict[str, Any]) -> str:
    counts = result.get("errors") or {}
    return ", ".join(f"{n} {code}" for code, n in counts.items()) or "0"


def _yes(met: bool) -> str:
    return "met" if met else "not met"


KINDS = {"idle_connections": _idle, "one_to_one": _one_to_one, "group_fanout": _group,
         "content_filter": _filter}


def table(results: list[dict[str, Any]]) -> str:
    rows = [HEADER, tuple("---" for _ in HEADER)]
    for result in results:
        rows += KINDS[result["scenario"]](result)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)
