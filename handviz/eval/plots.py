"""The calibration figures of `eval --real --plots DIR` (matplotlib, drawn off screen).

reliability.png: the share of true joints inside the cloud's ball against the ball's level (a
calibrated cloud lies on the diagonal; below it the balls are too small). sparsification.png: the
mean PA-MPJPE of the hands left after dropping the most doubtful ones, beside the oracle that
drops the worst ones; the area between them is the AUSE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

RELIABILITY = "reliability.png"
SPARSIFICATION = "sparsification.png"


def _new_axes(title: str) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 4.0), dpi=120)
    FigureCanvasAgg(fig)  # off screen: no pyplot, no GUI backend
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return fig, ax


def write_calibration_plots(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write reliability.png and sparsification.png for an `evaluate_real_samples` report into
    out_dir (made if missing): the overall curves bold, each group's (camera's) thin. Returns the
    files written; none when no hand was scored by the cascade."""
    calib = report["overall"].get("calibration", {})
    if not calib.get("num_hands"):
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    groups = {name: s.get("calibration", {}) for name, s in report.get("per_group", {}).items()}

    fig, ax = _new_axes(f"Ball coverage ({calib['num_hands']} hands, wrist left out)")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    for name, c in groups.items():
        if c.get("num_hands"):
            levels = [int(k) / 100 for k in c["ball_coverage"]]
            ax.plot(levels, list(c["ball_coverage"].values()), linewidth=0.8, alpha=0.5, label=name)
    levels = [int(k) / 100 for k in calib["ball_coverage"]]
    ax.plot(levels, list(calib["ball_coverage"].values()), marker="o", linewidth=2.0, color="black", label="all")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("ball level (share of hypotheses inside)")
    ax.set_ylabel("share of true joints inside")
    ax.legend(fontsize=6, loc="upper left")
    reliability = out / RELIABILITY
    fig.savefig(reliability)

    sp = calib["sparsification"]
    fig, ax = _new_axes(f"Sparsification (AUSE {calib['ause_mm']:.2f} mm)")
    ax.plot(sp["fractions"], sp["by_radius_mm"], marker=".", label="dropped by mean 90 % radius")
    ax.plot(sp["fractions"], sp["oracle_mm"], marker=".", linestyle="--", label="dropped by true error (oracle)")
    ax.set_xlabel("fraction of hands dropped")
    ax.set_ylabel("mean PA-MPJPE of the rest (mm)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    sparsification = out / SPARSIFICATION
    fig.savefig(sparsification)
    return [reliability, sparsification]
