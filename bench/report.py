"""The suite's Markdown table: one row per measure, Parley beside its baseline and the
issue's target, and beside the peer baselines (python-socketio with Redis, ejabberd) with
a ratio column each where a scenario runs them."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

Row = tuple[str, str, str, str, str, str, str]
HEADER = ("scenario", "measure", "Parley", "baseline", "ratio", "target", "met")


def _idle(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = [
        ("idle connections", f"KiB per idle connection at {row['connections']:,}",
         f"{row['parley']['kib_per_connection']}",
         f"relay {row['relay']['kib_per_connection']}",
         f"{row['ratio']}", "at most 1.5 of relay", _yes(row["ratio"] <= 1.5))
        for row in r["rows"]]
    cluster = r.get("cluster")
    if cluster is not None:
        rows.append(_idle_cluster(cluster))
    return rows


def _idle_cluster(c: dict[str, Any]) -> Row:
    if "not_run" in c:
        return ("idle connections", "KiB per idle connection over several nodes",
                f"not run: {c['not_run']}", "", "", "at most 1.5 of relay", "")
    return ("idle connections",
            f"KiB per idle connection at {c['connections']:,} over {c['nodes']} nodes",
            f"{c['parley']['kib_per_connection']}",
            f"relay {c['relay_kib_per_connection']} (at {c['relay_connections']:,})",
            f"{c['ratio']}", "at most 1.5 of relay", _yes(c["ratio"] <= 1.5))


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


def _broadcast(r: dict[str, Any]) -> list[Row]:
    p, b = r["parley"], r["relay"]
    floor = ""
    if r.get("relay_loadgen_bound"):
        floor = " (load generator bound: a floor)"
    elif not r.get("relay_saturated", True):
        floor = " (kept up at every step: a floor)"
    rows: list[Row] = [(
        "group broadcast", f"saturated deliveries/s to {r['online']} online",
        f"{p['saturated_per_s']:,}", f"relay {b['saturated_per_s']:,}{floor}", f"{r['ratio']}",
        "at least 0.5 of relay", _yes(r["ratio"] >= 0.5))]
    rows.append(("group broadcast", "lost / duplicated / out of order",
                 f"{p['lost']} / {p['duplicated']} / {p['out_of_order']}",
                 f"relay {b['lost']} / {b['duplicated']} / {b['out_of_order']}", "", "0",
                 _yes(not any(x[k] for x in (p, b)
                              for k in ("lost", "duplicated", "out_of_order")))))
    for step in p["steps"]:
        rows.append(("group broadcast", f"p50 / p99 to last at {step['offered_per_s']:,} msg/s",
                     f"{step['p50_ms']} / {step['p99_ms']} ms", "", "", "", ""))
    return rows


def _slow(r: dict[str, Any]) -> list[Row]:
    without, loaded = r["without"], r["with"]
    ends = [str(s["close_code"] or "open") for s in loaded["slow_readers"]]
    return [
        ("group slow readers", f"p99 to last of the others, with {r['slow']} slow readers",
         f"{loaded['p99_to_last_ms']} ms", f"without {without['p99_to_last_ms']} ms",
         f"{r['p99_ratio']}", "< 100 ms, at most 1.5 of without",
         _yes((loaded["p99_to_last_ms"] or 1e9) < 100 and (r["p99_ratio"] or 1e9) <= 1.5)),
        ("group slow readers", "server RSS start → peak → end (growth, second half)",
         f"{loaded['rss_start_mib']} → {loaded['rss_peak_mib']} → {loaded['rss_end_mib']} MiB "
         f"({loaded['rss_second_half_growth_mib']})",
         f"without {without['rss_start_mib']} → {without['rss_peak_mib']} MiB", "", "bounded",
         ""),
        ("group slow readers", "how the slow connections ended", ", ".join(ends), "", "",
         "4008 once the queue is full", ""),
    ]


def _filter(r: dict[str, Any]) -> list[Row]:
    return [("content filter", "one check, 1 KiB, two links (median)",
             f"{r['two_links_median_us']} µs", "", "", "< 50 µs",
             _yes(r["two_links_median_us"] < 50)),
            ("content filter", "sends/s filter on vs off", f"{r['sends_per_s_on']}",
             f"off {r['sends_per_s_off']}", f"{r['ratio_on_to_off']}", "", "")]


def _offline_sync(r: dict[str, Any]) -> list[Row]:
    best, plain = r["strategies"]["recommended"], r["strategies"]["plain"]
    what = f"{r['messages']:,} messages in {r['conversations']} conversations"
    return [("offline sync", f"{what}: connect to all held, pages of {best['limit']}, "
             f"{best['window']} in flight", f"{best['total_s']} s",
             f"pages of {plain['limit']}, one at a time: {plain['total_s']} s", "", "< 2 s",
             _yes(r["met"])),
            ("offline sync", "lost / duplicated / out of order",
             " / ".join(str(best[k]) for k in ("lost", "duplicated", "out_of_order")),
             " / ".join(str(plain[k]) for k in ("lost", "duplicated", "out_of_order")), "",
             "0", _yes(not any(s[k] for s in (best, plain)
                               for k in ("lost", "duplicated", "out_of_order"))))]


def _user_import(r: dict[str, Any]) -> list[Row]:
    plain, hashed, a = r["without_passwords"], r["with_passwords"], r["argon2"]
    argon2 = f"argon2id m={a['memory_kib']} KiB, t={a['time_cost']}, p={a['parallelism']}"
    beats = (f"{plain['heartbeat_during']['max_ms']} / {hashed['heartbeat_during']['max_ms']}"
             " ms")
    return [("user import", f"users/s, {plain['users']:,} without passwords",
             f"{plain['per_s']:,}", "", "", "at least 5,000", _yes(plain["per_s"] >= 5000)),
            ("user import", f"users/s, {hashed['users']:,} with passwords ({argon2})",
             f"{hashed['per_s']:,}", "", "", "reported", ""),
            ("user import", "password login, median / max",
             f"{r['password_login_ms']['median']} / {r['password_login_ms']['max']} ms", "", "",
             "", ""),
            ("user import", "slowest heartbeat answer during import, without / with passwords",
             beats, "", "", "", "")]


def _errors(result: dict[str, Any]) -> str:
    counts = result.get("errors") or {}
    return ", ".join(f"{n} {code}" for code, n in counts.items()) or "0"


def _yes(met: bool) -> str:
    return "met" if met else "not met"


KINDS = {"idle_connections": _idle, "one_to_one": _one_to_one, "group_fanout": _group,
         "content_filter": _filter, "group_broadcast": _broadcast,
         "group_slow_readers": _slow, "offline_sync": _offline_sync,
         "user_import": _user_import}


PEERS = {"socketio": "socket.io + Redis", "ejabberd": "ejabberd"}
PeerCells = tuple[str, ...]  # a measure and a ratio for each peer baseline
NO_PEERS: PeerCells = ("",) * 2 * len(PEERS)


def _peer_cells(result: dict[str, Any], show: Callable[[dict[str, Any]], str],
                ratio: str = "", why: bool = False) -> PeerCells:
    """Each peer's measure and Parley's ratio to it; a peer missing from an older result
    is blank, one that could not run says so (and why, on a scenario's first row)."""
    cells: list[str] = []
    for peer in PEERS:
        theirs = result.get(peer)
        if theirs is None:
            cells += ["", ""]
        elif "not_run" in theirs:
            cells += [f"not run: {theirs['not_run']}" if why else "not run", ""]
        else:
            value = result.get("peer_ratios", {}).get(peer) if ratio else None
            cells += [show(theirs), "" if value is None else f"{value}"]
    return tuple(cells)


def _idle_peers(r: dict[str, Any]) -> list[PeerCells]:
    return [_peer_cells(row, lambda b: f"{b['kib_per_connection']}", "ratio", why=i == 0)
            for i, row in enumerate(r["rows"])]


def _one_to_one_peers(r: dict[str, Any]) -> list[PeerCells]:
    cells = [_peer_cells(r, lambda b: f"{b['saturated_per_s']:,}", "ratio", why=True),
             _peer_cells(r, lambda b: f"{b['lost']} / {b['duplicated']} / {b['out_of_order']}"),
             _peer_cells(r, _errors)]
    for step in r["parley"]["steps"]:
        cells.append(_peer_cells(r, partial(_latency_at, rate=step["offered_per_s"])))
    return cells


def _latency_at(result: dict[str, Any], rate: float) -> str:
    """p50 / p99 at an offered rate, or blank where the baseline stopped stepping before."""
    for step in result["steps"]:
        if step["offered_per_s"] == rate:
            return f"{step['p50_ms']} / {step['p99_ms']} ms"
    return ""


PEER_KINDS: dict[str, Callable[[dict[str, Any]], list[PeerCells]]] = {
    "idle_connections": _idle_peers, "one_to_one": _one_to_one_peers}


def _with_peers(row: Row, peers: PeerCells) -> tuple[str, ...]:
    return (*row[:5], *peers, *row[5:])


def table(results: list[dict[str, Any]]) -> str:
    header = _with_peers(HEADER, tuple(c for name in PEERS.values() for c in (name, "ratio")))
    rows = [header, tuple("---" for _ in header)]
    for result in results:
        kind_rows = KINDS[result["scenario"]](result)
        peers_of = PEER_KINDS.get(result["scenario"])
        peer_rows = peers_of(result) if peers_of else []
        peer_rows += [NO_PEERS] * (len(kind_rows) - len(peer_rows))
        rows += [_with_peers(row, peers) for row, peers in zip(kind_rows, peer_rows, strict=True)]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)
