"""Metrics of a run: one JSON line per logged step in RUN_DIR/metrics.jsonl, and loss-curve plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lewm.utils.io import atomic_write


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


def plot_metrics(metrics_path: Path, plots_dir: Path) -> list[Path]:
    """Draw the loss terms (train and validation) and the learning rate against the step; returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    train = [row for row in rows if row.get("split") == "train"]
    val = [row for row in rows if row.get("split") == "val"]
    if not train:
        return []
    terms = [key for key in ("loss", "pred_loss", "sigreg") if key in train[0]]
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(1, len(terms) + 1, figsize=(4.2 * (len(terms) + 1), 3.4))
    for axis, term in zip(axes, terms, strict=False):
        axis.plot([row["step"] for row in train], [row[term] for row in train], label="train", lw=1)
        points = [(row["step"], row[term]) for row in val if term in row and math.isfinite(row[term])]
        if points:
            axis.plot(*zip(*points, strict=True), "o-", label="val", ms=3)
        axis.set_title(term)
        axis.set_xlabel("step")
        if all(row[term] > 0 for row in train):
            axis.set_yscale("log")
        axis.legend()
    axes[-1].plot([row["step"] for row in train], [row.get("lr", float("nan")) for row in train])
    axes[-1].set_title("learning rate")
    axes[-1].set_xlabel("step")
    figure.tight_layout()
    out = plots_dir / "loss.png"
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return [out]
