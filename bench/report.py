"""`costmesh report RUN [--baseline RUN]`: the savings waterfall and the latency and quality figures of
a replay, printed and written to runs/RUN/report.json and runs/RUN/report.html (plots inline as SVG).

The waterfall starts from the baseline (every request on the large model at full context, uncached) and
subtracts what each intervention saved, summed over the requests (the parts add up to baseline - cost).
Escalation appears as a negative step: what the rejected cheap answers cost. Quality is accuracy where
the workload has gold answers; with --baseline (a replay run with --tier large --no-cache) it is set
side by side with the baseline's. cache_semantic_check is the false-hit rate of the semantic hits the
orchestrator spot-checked during the replay (recorded by bench/replay.py; "not measured" without it).
"""

from __future__ import annotations

import argparse
import html
import json
import statistics
from pathlib import Path
from typing import Any

from bench.replay import RUNS
from bench.stats import percentile, wilson

STEPS = ("cache_exact", "cache_semantic", "routing", "escalation", "compression", "pruning", "prefix_cache", "batch")


def load(run: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    folder = Path(run) if Path(run).is_dir() else RUNS / run
    if not (folder / "requests.jsonl").exists():
        raise SystemExit(f"no replay run at {folder}")
    meta = json.loads((folder / "run.json").read_text())
    rows = [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines() if line.strip()]
    return meta, rows


def accuracy(rows: list[dict[str, Any]]) -> float | None:
    scored = [r["correct"] for r in rows if r.get("correct") is not None]
    return round(sum(scored) / len(scored), 4) if scored else None


def latency(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50_ms": round(statistics.median(values), 2),
        "p95_ms": round(percentile(values, 95), 2),
        "p99_ms": round(percentile(values, 99), 2),
    }


def provider_label(rows: list[dict[str, Any]], recorded: str) -> str:
    """Which models answered, from the responses: a real provider reports the model it is priced as (OpenAI's
    gpt-4o-mini-2024-07-18 under the gpt-4o-mini row); a local stand-in reports its own name.
    `recorded`: the run's own label, for runs recorded before responses carried price_model."""
    answered = [r for r in rows if r.get("price_model") not in (None, "", "cache")]
    if not answered:
        return recorded
    real, stand_ins = set(), set()
    for r in answered:
        model, priced = str(r["model"]), str(r["price_model"])
        if model.startswith(priced):
            real.add(priced)
        else:
            stand_ins.add(f"{model} priced as {priced}")
    parts = [f"OpenAI {' / '.join(sorted(real))}"] if real else []
    if stand_ins:
        parts.append(f"local stand-ins {' / '.join(sorted(stand_ins))}")
    return "; ".join(parts)


def semantic_check(counts: dict[str, Any] | None) -> dict[str, Any] | str:
    """The spot-checks' verdicts on semantic hits (bench/spotchecks.py): the false-hit rate production sees,
    disagree / (agree + disagree), with its 95 % Wilson interval. Unclear and error are not verdicts."""
    if counts is None:
        return "not measured"
    judged = counts["agree"] + counts["disagree"]
    return {
        **{k: counts[k] for k in ("agree", "disagree", "unclear", "error")},
        "disagree_rate": round(counts["disagree"] / judged, 4) if judged else None,
        "disagree_rate_ci95": wilson(counts["disagree"], judged),
        **{k: counts[k] for k in ("evicted", "skipped", "unfinished", "cost_usd") if k in counts},
    }


def summarize(
    meta: dict[str, Any], rows: list[dict[str, Any]], baseline_rows: list[dict[str, Any]] | None
) -> dict[str, Any]:
    ok = [r for r in rows if "error" not in r]
    baseline = sum(r["baseline_cost_usd"] for r in ok)
    cost = sum(r["cost_usd"] for r in ok)
    saved = {step: sum(r["savings_by_intervention"].get(step, 0.0) for r in ok) for step in STEPS}
    others = {k for r in ok for k in r["savings_by_intervention"]} - set(STEPS)
    saved |= {k: sum(r["savings_by_intervention"].get(k, 0.0) for r in ok) for k in sorted(others)}
    answered = [r for r in ok if r["cache"] not in ("exact", "semantic")]
    return {
        "run_id": meta["run_id"],
        "workload": meta["workload"],
        "tiers": provider_label(ok, meta.get("tiers", "")),
        "requests": len(rows),
        "errors": len(rows) - len(ok),
        "baseline_usd": round(baseline, 6),
        "cost_usd": round(cost, 6),
        "saved_share": round(1 - cost / baseline, 4) if baseline else 0.0,
        "waterfall_usd": {k: round(v, 6) for k, v in saved.items()},
        "mesh_added_latency": latency([r["mesh_added_ms"] for r in ok]),
        "end_to_end_latency": latency([r["latency_ms"] for r in ok]),
        "cache_hit_rate": {
            kind: round(sum(r["cache"] == kind for r in ok) / max(1, len(ok)), 4) for kind in ("exact", "semantic")
        },
        # Routed to the cheap tier first (escalated requests included), and answered by it in the end.
        "routed_small_share": round(
            sum(r["tier"] == "small" or r["escalated"] for r in answered) / max(1, len(answered)), 4
        ),
        "small_tier_share": round(sum(r["tier"] == "small" for r in answered) / max(1, len(answered)), 4),
        "escalation_rate": round(sum(r["escalated"] for r in answered) / max(1, len(answered)), 4),
        "accuracy": accuracy(ok),
        "baseline_accuracy": accuracy(baseline_rows) if baseline_rows else None,
        "cache_semantic_check": semantic_check(meta.get("cache_semantic_check")),
    }


def waterfall_svg(report: dict[str, Any]) -> str:
    """Bars from the baseline down through each intervention to what was spent."""
    steps = (
        [("baseline", report["baseline_usd"])]
        + [(name, -usd) for name, usd in report["waterfall_usd"].items() if usd]
        + [("spent", report["cost_usd"])]
    )
    top = max(report["baseline_usd"], 1e-12)
    width, bar, gap, height = 720, 44, 16, 260
    parts, level = [], 0.0
    for i, (name, value) in enumerate(steps):
        x = 60 + i * (bar + gap)
        if name in ("baseline", "spent"):
            low, high, colour = 0.0, value, "#4a6fa5"
        else:
            low, high = sorted((level, level + value))
            colour = "#5a9e6f" if value < 0 else "#c0504d"
        if name == "baseline":
            level = value
        elif name != "spent":
            level += value
        y0, y1 = height - 30 - high / top * (height - 60), height - 30 - low / top * (height - 60)
        parts.append(f'<rect x="{x}" y="{y0:.1f}" width="{bar}" height="{max(1.0, y1 - y0):.1f}" fill="{colour}"/>')
        parts.append(
            f'<text x="{x + bar / 2}" y="{height - 12}" font-size="10" text-anchor="middle">{html.escape(name)}</text>'
        )
        parts.append(
            f'<text x="{x + bar / 2}" y="{y0 - 4:.1f}" font-size="9" text-anchor="middle">${abs(value):.4f}</text>'
        )
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">{"".join(parts)}</svg>'


def latency_svg(rows: list[dict[str, Any]]) -> str:
    """Mesh-added latency per request, sorted: the percentile curve."""
    values = sorted(r["mesh_added_ms"] for r in rows if "error" not in r)
    if not values:
        return ""
    width, height, top = 720, 200, max(values) or 1.0
    points = " ".join(
        f"{40 + i / max(1, len(values) - 1) * (width - 60):.1f},{height - 20 - v / top * (height - 40):.1f}"
        for i, v in enumerate(values)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<polyline points="{points}" fill="none" stroke="#4a6fa5"/>'
        f'<text x="40" y="12" font-size="10">max {top:.1f} ms</text>'
        f'<text x="{width - 60}" y="{height - 4}" font-size="10">p100</text>'
        f'<text x="40" y="{height - 4}" font-size="10">p0</text>'
        "</svg>"
    )


def to_html(report: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    table = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(json.dumps(v))}</td></tr>" for k, v in report.items()
    )
    return (
        "<!doctype html><meta charset='utf-8'><title>costmesh report</title>"
        "<style>body{font-family:sans-serif;max-width:780px;margin:2em auto}td{padding:2px 8px}</style>"
        f"<h1>costmesh replay {html.escape(report['run_id'])}</h1>"
        f"<p>Workload <b>{html.escape(report['workload'])}</b>; tiers: {html.escape(report['tiers'])} "
        "(prices from costmesh's price table).</p>"
        f"<h2>Savings waterfall: {100 * report['saved_share']:.1f} % below the baseline</h2>{waterfall_svg(report)}"
        f"<h2>Latency added by the mesh (every request, sorted)</h2>{latency_svg(rows)}"
        f"<h2>Figures</h2><table>{table}</table>"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh report", description=__doc__)
    parser.add_argument("run", help="a run id under runs/, or its folder")
    parser.add_argument("--baseline", default="", help="a replay of the same workload with --tier large --no-cache")
    args = parser.parse_args(argv)
    meta, rows = load(args.run)
    baseline_rows = load(args.baseline)[1] if args.baseline else None
    report = summarize(meta, rows, baseline_rows)
    folder = Path(args.run) if Path(args.run).is_dir() else RUNS / args.run
    (folder / "report.json").write_text(json.dumps(report, indent=2))
    (folder / "report.html").write_text(to_html(report, rows))
    print(f"{'intervention':<16}{'USD':>12}")
    print(f"{'baseline':<16}{report['baseline_usd']:>12.6f}")
    for name, usd in report["waterfall_usd"].items():
        print(f"{'- ' + name:<16}{usd:>12.6f}")
    print(f"{'= spent':<16}{report['cost_usd']:>12.6f}   ({100 * report['saved_share']:.1f} % saved)")
    for key in (
        "mesh_added_latency",
        "end_to_end_latency",
        "cache_hit_rate",
        "routed_small_share",
        "small_tier_share",
        "escalation_rate",
        "accuracy",
        "baseline_accuracy",
        "cache_semantic_check",
        "tiers",
    ):
        print(f"{key}: {report[key]}")
    print(f"wrote {folder / 'report.json'} and {folder / 'report.html'}")
    return 0
