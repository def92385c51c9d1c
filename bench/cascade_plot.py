"""The cascade's cost-quality curve as an SVG: cost against all-large (x), accuracy (y)."""

from __future__ import annotations

from pathlib import Path

from services.router.estimator import QualityModel
from training import simulate

W, H, PAD = 640, 420, 56


def _points(rows: list[simulate.Row], model: QualityModel) -> dict[str, list[tuple[float, float]]]:
    large = simulate.all_large(rows)

    def xy(o: simulate.PolicyResult) -> tuple[float, float]:
        return o.total_cost / max(large.total_cost, 1e-12), o.accuracy

    sweep = [xy(simulate.cascade(rows, t / 50, t / 50)) for t in range(51)]
    small = simulate.all_small(rows)
    return {
        "cascade": sorted(sweep),
        "chosen": [xy(simulate.cascade(rows, p.route_threshold, p.keep_threshold)) for p in model.points],
        "random": [xy(small), xy(large)],  # random routing lies on the line between the two tiers
        "fixed": [xy(small), xy(large), xy(simulate.oracle(rows))],
    }


def svg_curve(rows: list[simulate.Row], model: QualityModel, path: Path) -> None:
    pts = _points(rows, model)
    every = [p for series in pts.values() for p in series]
    y0, y1 = min(y for _, y in every), max(y for _, y in every)

    def at(p: tuple[float, float]) -> tuple[float, float]:
        x = PAD + p[0] / 1.5 * (W - 2 * PAD)  # escalation can cost more than all-large: room to 1.5x
        y = H - PAD - (p[1] - y0) / max(y1 - y0, 1e-9) * (H - 2 * PAD)
        return x, y

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">']
    out.append(f'<rect width="{W}" height="{H}" fill="white"/>')
    out.append(f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">cost relative to all-large</text>')
    out.append(f'<text x="16" y="{H / 2}" transform="rotate(-90 16 {H / 2})" text-anchor="middle">accuracy</text>')
    for series, colour in (("cascade", "#1f77b4"), ("random", "#aaaaaa")):
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in map(at, pts[series]))
        out.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for p in pts["chosen"]:
        x, y = at(p)
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#1f77b4"/>')
    for p, label in zip(pts["fixed"], ("all-small", "all-large", "oracle"), strict=True):
        x, y = at(p)
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#d62728"/>')
        out.append(f'<text x="{x + 7:.1f}" y="{y - 7:.1f}">{label} ({p[0]:.2f}, {p[1]:.2f})</text>')
    out.append(
        f'<text x="{PAD}" y="20">blue: cascade over one threshold (dots: operating points per quality target); '
        "grey: random routing</text>"
    )
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")
