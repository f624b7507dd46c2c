"""Plots are redrawn while a run trains (at validations, rate-limited) and a redraw never leaves half a PNG."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from lewm.training import train, trainer
from lewm.training.metrics import plot_metrics, read_metrics

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _recording_plots(monkeypatch: pytest.MonkeyPatch, every_s: float) -> list[tuple[dict, list[str]]]:
    """Make the trainer redraw at most every `every_s` seconds and record, at each redraw, the last metrics row
    and the files in plots/ just after it."""
    drawn = []

    def plot_and_record(metrics_path: Path, plots_dir: Path) -> list[Path]:
        written = plot_metrics(metrics_path, plots_dir)
        drawn.append((read_metrics(metrics_path)[-1], sorted(path.name for path in Path(plots_dir).iterdir())))
        return written

    monkeypatch.setattr(trainer, "PLOT_EVERY_S", every_s)
    monkeypatch.setattr(trainer, "plot_metrics", plot_and_record)
    return drawn


def test_plots_are_redrawn_at_each_validation(tiny_config, dots_file: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = _recording_plots(monkeypatch, every_s=0.0)
    config = tiny_config(dots_file, tmp_path / "run", steps=12)
    config.val_every = 5
    train(config)
    # each validation (every 5 steps and at the last) is drawn just after its val row; then the final drawing
    assert [(row["split"], row["step"]) for row, _ in drawn] == [("val", 5), ("val", 10), ("val", 12), ("val", 12)]
    assert all(files == ["diagnostics.png", "loss.png"] for _, files in drawn)  # no temp file left beside them
    assert (tmp_path / "run" / "plots" / "loss.png").read_bytes().startswith(PNG_SIGNATURE)


def test_redraws_are_rate_limited(tiny_config, dots_file: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = _recording_plots(monkeypatch, every_s=1e9)
    config = tiny_config(dots_file, tmp_path / "run", steps=12)
    config.val_every = 5
    train(config)
    assert [row["step"] for row, _ in drawn] == [12]  # the end of training always draws


def test_a_failed_redraw_keeps_the_previous_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = tmp_path / "metrics.jsonl"
    rows = [{"split": "train", "step": step, "loss": 1.0 / step, "lr": 1e-3, "effective_rank": 3.0}
            for step in range(1, 6)]
    metrics.write_text("".join(json.dumps(row) + "\n" for row in rows))
    plots = tmp_path / "plots"
    assert sorted(path.name for path in plot_metrics(metrics, plots)) == ["diagnostics.png", "loss.png"]
    before = (plots / "loss.png").read_bytes()

    def half_a_png_then_disk_full(self: Figure, target, **kwargs) -> None:
        """What a full disk does to savefig: the start of the file is written, then writing fails."""
        with ExitStack() as stack:
            stream = stack.enter_context(open(target, "wb")) if isinstance(target, str | os.PathLike) else target
            stream.write(PNG_SIGNATURE + b"half")
        raise OSError("No space left on device")

    monkeypatch.setattr(Figure, "savefig", half_a_png_then_disk_full)
    with pytest.raises(OSError, match="No space left"):
        plot_metrics(metrics, plots)
    assert (plots / "loss.png").read_bytes() == before
    assert sorted(path.name for path in plots.iterdir()) == ["diagnostics.png", "loss.png"]
