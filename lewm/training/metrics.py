"""Metrics of a run: one JSON line per logged step in RUN_DIR/metrics.jsonl, and loss-curve plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lewm.utils.io import atomic_write
from lewm.utils.plotting import pyplot


class MetricsLog:
    """Append-only JSONL log; on resume, lines past the resumed step are dropped so curves never double back."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.write_text("")
        elif self.path.exists():
            kept = [row for row in read_metrics(self.path) if row.get("step", 0) <= resume_step]
            text = "".join(json.dumps(row) + "\n" for row in kept)
            atomic_write(self.path, lambda stream: stream.write(text.encode()))

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as stream:
            stream.write(json.dumps(row) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All rows of a metrics.jsonl; a torn last line (crash while writing) is skipped."""
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


LOSS_TERMS = ("loss", "pred_loss", "sigreg", "variance", "covariance", "time_similarity", "time_variance",
              "time_covariance", "inverse_dynamics")
"""Loss terms any objective may log, in the order they are drawn (missing or all-zero ones are skipped)."""
DIAGNOSTICS = ("effective_rank", "embedding_std", "embedding_std_min", "straightness")
"""Collapse and geometry diagnostics logged during training, drawn in plots/diagnostics.png."""


def plot_metrics(metrics_path: Path, plots_dir: Path) -> list[Path]:
    """Draw plots/loss.png (loss terms, train and validation, and the learning rate) and plots/diagnostics.png
    (effective rank, per-dimension std, temporal straightness) against the step; returns the files written.

    Called during training too: each file is replaced atomically, so a reader sees the old plot or the new one,
    never half of one."""
    rows = read_metrics(metrics_path)
    train = [row for row in rows if row.get("split") == "train"]
    if not train:
        return []
    panels = {"loss": [t for t in LOSS_TERMS if any(row.get(t, 0.0) != 0.0 for row in train)] + ["lr"],
              "diagnostics": [t for t in DIAGNOSTICS if any(t in row for row in rows)]}
    written = []
    for name, terms in panels.items():
        if terms:
            out = Path(plots_dir) / f"{name}.png"
            _draw(out, terms, train, [row for row in rows if row.get("split") == "val"], log_scale=name == "loss")
            written.append(out)
    return written


def _draw(out: Path, terms: list[str], train: list[dict[str, Any]], val: list[dict[str, Any]],
          log_scale: bool) -> None:
    """One figure with a panel per term (train line, validation points) against the step, written to `out`."""
    plt = pyplot()
    steps = [row["step"] for row in train]
    figure, axes = plt.subplots(1, len(terms), figsize=(4.2 * len(terms), 3.4), squeeze=False)
    for axis, term in zip(axes[0], terms, strict=True):
        values = [row.get(term, float("nan")) for row in train]
        if any(term in row for row in train):
            axis.plot(steps, values, label="train", lw=1)
        points = [(row["step"], row[term]) for row in val if term in row and math.isfinite(row[term])]
        if points:
            axis.plot(*zip(*points, strict=True), "o-", label="val", ms=3)
            axis.legend()
        axis.set_title("learning rate" if term == "lr" else term)
        axis.set_xlabel("step")
        if log_scale and term != "lr" and all(value > 0 for value in values if value == value):
            axis.set_yscale("log")
    figure.tight_layout()
    try:
        atomic_write(out, lambda stream: figure.savefig(stream, format="png", dpi=110))
    finally:
        plt.close(figure)
