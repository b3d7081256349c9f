"""Plots of the suite's results, for docs/performance.md: where a curve says more than a
table, such as latency against offered rate.

    python -m bench.plots [--results bench/results] [--out docs/performance]

Reads the bench/results/<scenario>.json that `python -m bench` writes and draws a PNG for
each scenario it knows that has a result; the others are passed over. matplotlib is an
optional dependency (`pip install -e '.[bench]'`): without it nothing is drawn and the
suite says so, but still runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

RESULTS = Path(__file__).resolve().parent / "results"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "performance"
# Where a quick run's plots go: they check the drawing, and must not replace the documented
# ones from a full run.
QUICK = RESULTS / "plots"

Figure = Any  # matplotlib.figure.Figure; matplotlib is optional, so not imported here
STYLES = {"parley": {"color": "tab:blue", "label": "Parley"},
          "relay": {"color": "tab:gray", "label": "bare relay"}}


def _points(steps: list[dict[str, Any]], x: str, y: str) -> tuple[list[float], list[float]]:
    """The steps' (x, y) pairs that have a finite y: a step with nothing delivered has none."""
    pairs = [(s[x], s[y]) for s in steps if isinstance(s.get(y), int | float)]
    return [a for a, _ in pairs], [b for _, b in pairs]


def _title(fig: Figure, text: str, result: dict[str, Any]) -> None:
    if result.get("quick"):
        text += " (quick run: a check, not a measurement)"
    fig.suptitle(text, fontsize=11)


def one_to_one(result: dict[str, Any], plt: Any) -> Figure:
    """1:1 send-to-deliver p50 and p99 against the offered rate, Parley beside the relay."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, style in STYLES.items():
        steps = result[name]["steps"]
        ax.plot(*_points(steps, "offered_per_s", "p50_ms"), marker="o", linestyle="-",
                color=style["color"], label=f"{style['label']} p50")
        ax.plot(*_points(steps, "offered_per_s", "p99_ms"), marker="^", linestyle="--",
                color=style["color"], label=f"{style['label']} p99")
    ax.axhline(50, color="tab:red", linewidth=0.8, linestyle=":", label="target p99 50 ms")
    ax.set(xscale="log", yscale="log", xlabel="offered 1:1 messages per second",
           ylabel="send to delivery (ms)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _title(fig, f"1:1 messages, {result['pairs']:,} pairs", result)
    return fig


def group_broadcast(result: dict[str, Any], plt: Any) -> Figure:
    """Group messages stepping up: deliveries a second and p99 to the last member."""
    fig, (rate_ax, wait_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, style in STYLES.items():
        steps = result[name]["steps"]
        rate_ax.plot(*_points(steps, "offered_deliveries_per_s", "delivered_per_s"),
                     marker="o", color=style["color"], label=style["label"])
        wait_ax.plot(*_points(steps, "offered_per_s", "p50_ms"), marker="o", linestyle="-",
                     color=style["color"], label=f"{style['label']} p50")
        wait_ax.plot(*_points(steps, "offered_per_s", "p99_ms"), marker="^", linestyle="--",
                     color=style["color"], label=f"{style['label']} p99")
    offered = [s["offered_deliveries_per_s"] for n in STYLES for s in result[n]["steps"]]
    rate_ax.plot([min(offered), max(offered)], [min(offered), max(offered)], color="black",
                 linewidth=0.6, linestyle=":", label="all delivered")
    rate_ax.set(xscale="log", yscale="log", xlabel="offered deliveries per second",
                ylabel="deliveries per second")
    wait_ax.axhline(100, color="tab:red", linewidth=0.8, linestyle=":",
                    label="target p99 100 ms")
    wait_ax.set(xscale="log", yscale="log", xlabel="offered group messages per second",
                ylabel="send to last online member (ms)")
    for ax in (rate_ax, wait_ax):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    _title(fig, f"Group of {result['members']:,}, {result['online']:,} online: Parley "
                f"{result['ratio']} of the relay's broadcast rate", result)
    return fig


def group_fanout(result: dict[str, Any], plt: Any) -> Figure:
    """How the fan-out times spread at the fixed rate: every delivery, and to the last."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    deliveries = result.get("delivery_percentiles_ms") or []
    ax.plot(deliveries, [q / 100 for q in range(len(deliveries))], color="tab:blue",
            label="each delivery")
    to_last = sorted(result.get("to_last_ms") or [])
    ax.step(to_last, [(i + 1) / len(to_last) for i in range(len(to_last))], where="post",
            color="tab:orange", label="each message, to the last member")
    ax.axvline(100, color="tab:red", linewidth=0.8, linestyle=":", label="target p99 100 ms")
    ax.set(xscale="log", xlabel="send to receipt (ms)", ylabel="share at or under",
           ylim=(0, 1.01))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _title(fig, f"Group fan-out: {result['members']:,} members, {result['online']:,} online, "
                f"{result['rate_per_s']:g} messages/s", result)
    return fig


def group_slow_readers(result: dict[str, Any], plt: Any) -> Figure:
    """The server's RSS over each run, and the others' latency, without and with."""
    fig, (rss_ax, wait_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    colors = {"without": "tab:blue", "with": "tab:orange"}
    for run, color in colors.items():
        samples = result[run]["rss_kib"]
        rss_ax.plot([t for t, _ in samples], [kib / 1024 for _, kib in samples], color=color,
                    label=f"{run} slow readers{_ends(result[run]['slow_readers'])}")
    # From zero: what matters is whether the line climbs, not its wiggles.
    peak = max(kib for run in colors for _, kib in result[run]["rss_kib"]) / 1024
    rss_ax.set(xlabel="seconds into the run", ylabel="server RSS (MiB)", ylim=(0, peak * 1.2))
    rss_ax.grid(True, alpha=0.3)
    rss_ax.legend(fontsize=8, loc="lower right")

    names = ["p50", "p99", "max"]
    for offset, (run, color) in enumerate(colors.items()):
        values = [result[run][f"{n}_to_last_ms"] or 0 for n in names]
        wait_ax.bar([i + 0.38 * offset for i in range(3)], values, width=0.38, color=color,
                    label=f"{run} slow readers")
    wait_ax.set_xticks([i + 0.19 for i in range(3)], names)
    wait_ax.axhline(100, color="tab:red", linewidth=0.8, linestyle=":", label="target p99")
    wait_ax.set(ylabel="send to last full-speed member (ms)")
    wait_ax.legend(fontsize=8)
    texts = f"{result['text_chars']:,}-character" if result["text_chars"] else "short"
    queue = result["outbound_queue_frames"]
    queue = f"an outbound queue of {queue:,} frames" if isinstance(queue, int) else (
        "the default outbound queue")
    _title(fig, f"{result['slow']} slow readers among {result['online']:,} online, "
                f"{result['rate_per_s']:g} group messages/s\n{texts} texts, {queue}", result)
    return fig


def _ends(slow: list[dict[str, Any]]) -> str:
    closed = sum(1 for s in slow if s["close_code"] == 4008)
    return f" ({closed} of {len(slow)} closed with 4008)" if slow else ""


PLOTS: dict[str, Callable[[dict[str, Any], Any], Figure]] = {
    "one_to_one": one_to_one,
    "group_broadcast": group_broadcast,
    "group_fanout": group_fanout,
    "group_slow_readers": group_slow_readers,
}


def render(results: Path = RESULTS, out: Path = DOCS) -> list[Path]:
    """Draw every plot that has a result; the files written. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, and no GUI toolkit needed
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for scenario, draw in PLOTS.items():
        source = results / f"{scenario}.json"
        if not source.exists():
            continue
        fig = draw(orjson.loads(source.read_bytes()), plt)
        target = out / f"{scenario}.png"
        fig.savefig(target, dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(target)
    return written


def render_or_skip(results: Path, out: Path) -> str:
    """What the suite prints: the plots drawn, or why there are none."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "plots skipped: matplotlib is not installed (pip install -e '.[bench]')"
    written = render(results, out)
    return "plots: " + (", ".join(str(p) for p in written) or "none, no results to draw")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    print(render_or_skip(args.results, args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
