"""The pain chart on the client page: a server-rendered SVG, readable without JavaScript."""

from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 340, 160, 28


def pain_chart(points: list[tuple[datetime, int]], label: str = "Pain (0-10) over time") -> Markup:
    """Pain scores as a line over their dates; y from 0 (bottom) to 10 (top)."""
    if not points:
        return Markup("")
    first, last = points[0][0], points[-1][0]
    span = (last - first).total_seconds() or 1.0

    def x(at: datetime) -> float:
        return PAD + (WIDTH - 2 * PAD) * ((at - first).total_seconds() / span if len(points) > 1 else 0.5)

    def y(pain: int) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * pain / 10

    line = " ".join(f"{x(at):.1f},{y(p):.1f}" for at, p in points)
    dots = "".join(
        f'<circle cx="{x(at):.1f}" cy="{y(p):.1f}" r="4"><title>{escape(at.date())}: {p}/10</title></circle>'
        f'<text x="{x(at):.1f}" y="{y(p) - 8:.1f}" text-anchor="middle" font-size="11">{p}</text>'
        for at, p in points
    )
    grid = "".join(
        f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e7eb"/>'
        f'<text x="{PAD - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="10">{v}</text>'
        for v in (0, 5, 10)
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{grid}"
        f'<polyline fill="none" stroke="#2f5d62" stroke-width="2" points="{line}"/>'
        f'<g fill="#2f5d62">{dots}</g>'
        f'<text x="{PAD}" y="{HEIGHT - 6}" font-size="10">{escape(first.date())}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" font-size="10" text-anchor="end">'
        f"{escape(last.date())}</text>"
        "</svg>"
    )
