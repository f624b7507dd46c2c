"""`report(runs, out)`: one page comparing trained runs side by side (LeWM vs PLDM, lambdas, seeds ...).

For each run it gathers the science suite's numbers, computing what is missing and caching it in the run:

    RUN/analysis/probe.json         linear and MLP probes (lewm probe)
    RUN/analysis/straightness.json  straightness along held-out episodes (lewm straightness)
    RUN/surprise/surprise.json      violation of expectation (lewm surprise), when an environment is given
    RUN/eval/eval.json              planning success beside random (lewm eval), read if present, run if asked

A cached file is reused only when it was computed from the run's current checkpoint step. The page
(OUT/report.md and OUT/report.html) holds one table (a column per run), training curves of every run overlaid
(OUT/curves.png: prediction loss, effective rank, per-dimension std, temporal straightness) and each run's
surprise and evaluation plots.
"""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from lewm.data import EpisodeFile
from lewm.envs.registry import canonical_name
from lewm.errors import LewmError
from lewm.runs import load_run
from lewm.training.metrics import read_metrics
from lewm.utils.io import atomic_write_text
from lewm.utils.plotting import pyplot


@dataclass
class ReportConfig:
    """What the report computes for runs that lack it."""

    env: str | None = None
    """Environment of the runs' data: enables surprise, and evaluation with `evaluate`."""
    evaluate: bool = False
    """Run the planning protocol for runs without eval/eval.json (minutes per run on a CPU)."""
    eval_episodes: int = 50
    """Start/goal pairs when the report runs the protocol."""
    target: str | None = None
    """Probe target (default: proprio when the data has it, else state[0:2])."""
    device: str = "auto"
    """'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N': device for encoding and planning."""


def _cached(path: Path, current: Callable[[dict[str, Any]], bool],
            compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The JSON at `path` when `current(saved)` (same checkpoint step, same settings), else `compute()`, written
    there."""
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            if current(saved):
                return saved
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    result = compute()
    atomic_write_text(path, json.dumps(result, indent=1))
    return result


def _default_target(data_path: Path, pixels_key: str, action_key: str) -> str:
    with EpisodeFile(data_path, pixels_key=pixels_key, action_key=action_key) as data:
        if "proprio" in data.columns:
            return "proprio"
        if "state" in data.columns:
            return "state[0:2]"
    raise LewmError(f"{data_path}: neither a 'proprio' nor a 'state' column to probe; pass --target")


def gather(run_dir: Path, config: ReportConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every number of one run, computing and caching the missing ones."""
    from lewm.analysis.probe import probe
    from lewm.analysis.straightness import straightness
    from lewm.analysis.surprise import plot_surprise, surprise

    run_dir = Path(run_dir)
    run = load_run(run_dir, config.device)  # read once, handed to every analysis; a missing run fails here
    settings = run.config
    target = config.target or _default_target(settings.data_path, settings.data.pixels_key, settings.data.action_key)
    is_lewm = settings.objective.kind == "lewm"
    summary: dict[str, Any] = {"run": str(run_dir), "step": run.step, "objective": settings.objective.kind,
                               "lambda": settings.objective.sigreg_weight if is_lewm else None, "target": target}
    analysis = run_dir / "analysis"
    analysis.mkdir(exist_ok=True)
    log(f"{run_dir}: probe ({target})")
    probes = _cached(analysis / "probe.json",
                     lambda saved: saved["_meta"]["checkpoint_step"] == run.step and target in saved,
                     lambda: probe(run, [target], device=config.device))
    summary["probe"] = probes[target]
    log(f"{run_dir}: straightness")
    summary["straightness"] = _cached(analysis / "straightness.json",
                                      lambda saved: saved["checkpoint_step"] == run.step,
                                      lambda: straightness(run, device=config.device))
    surprise_path = run_dir / "surprise" / "surprise.json"
    if config.env is not None:
        log(f"{run_dir}: surprise ({config.env})")
        surprise_path.parent.mkdir(exist_ok=True)
        summary["surprise"] = _cached(surprise_path,
                                      lambda saved: saved.get("checkpoint_step") == run.step
                                      and saved["env"] == canonical_name(config.env),
                                      lambda: surprise(run, config.env, device=config.device))
        plot_surprise(summary["surprise"], surprise_path.parent / "surprise.png")
    elif surprise_path.is_file():
        summary["surprise"] = json.loads(surprise_path.read_text())
    eval_path = run_dir / "eval" / "eval.json"
    if eval_path.is_file():
        summary["eval"] = json.loads(eval_path.read_text())
    if config.evaluate and summary.get("eval", {}).get("protocol", {}).get("checkpoint_step") != run.step:
        if config.env is None:
            raise LewmError("report: --evaluate needs --env (two-room, pusht, reacher, cube)")
        from lewm.evaluation import default_eval_config, evaluate

        log(f"{run_dir}: planning protocol ({config.eval_episodes} episodes on {config.env})")
        protocol = default_eval_config(config.env, config.eval_episodes)
        summary["eval"] = evaluate(run, config.env, config=protocol, device=config.device)
    rows = read_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").is_file() else []
    train_rows = [row for row in rows if row.get("split") == "train"]
    summary["final_train"] = train_rows[-1] if train_rows else {}
    summary["metrics"] = rows
    return summary


def _run_names(runs: list[Path]) -> list[str]:
    """Run folder names, with the parent prepended where two runs share a name."""
    names = [run.name for run in runs]
    if len(set(names)) < len(names):
        names = [f"{run.parent.name}/{run.name}" for run in runs]
    return names


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return format(value, spec)


def comparison_table(summaries: list[dict[str, Any]], names: list[str]) -> list[list[str]]:
    """Rows of the comparison: a header row, then one row per quantity with a cell per run."""

    def surprise_cell(summary: dict[str, Any], kind: str) -> str:
        numbers = summary.get("surprise", {}).get(kind)
        return "-" if numbers is None else f"p {numbers['p_value']:.2g}, d_z {numbers['effect_size']:.2f}"

    def success_cell(summary: dict[str, Any], prefix: str) -> str:
        result = summary.get("eval")
        if result is None:
            return "-"
        lo, hi = result[f"{prefix}ci95"]
        return f"{result[f'{prefix}success_rate']:.0%} ({lo:.0%}-{hi:.0%})"

    rows = [["", *names]]
    quantities: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("objective", lambda s: s["objective"] + (f" (lambda {s['lambda']:g})" if s["lambda"] is not None else "")),
        ("training steps", lambda s: str(s["step"])),
        ("probe target", lambda s: s["target"]),
        ("probe r, linear", lambda s: _fmt(s["probe"]["linear"]["r"])),
        ("probe MSE, linear", lambda s: _fmt(s["probe"]["linear"]["mse"], ".4f")),
        ("probe r, MLP", lambda s: _fmt(s["probe"].get("mlp", {}).get("r"))),
        ("straightness (held-out episodes)", lambda s: _fmt(s["straightness"]["straightness"])),
        ("surprise, teleport", lambda s: surprise_cell(s, "teleport")),
        ("surprise, colour change", lambda s: surprise_cell(s, "colour")),
        ("planning success (95% CI)", lambda s: success_cell(s, "")),
        ("random policy, same pairs", lambda s: success_cell(s, "random_")),
        ("final pred_loss (train)", lambda s: _fmt(s["final_train"].get("pred_loss"), ".4f")),
        ("final effective rank (train)", lambda s: _fmt(s["final_train"].get("effective_rank"), ".1f")),
        ("final per-dim std (train)", lambda s: _fmt(s["final_train"].get("embedding_std"))),
    ]
    for label, cell in quantities:
        rows.append([label, *(cell(summary) for summary in summaries)])
    return rows


def markdown_table(rows: list[list[str]]) -> str:
    """A GitHub Markdown table with aligned columns (also readable as plain text). Cells are kept as written:
    tabulate would otherwise reformat a column of numbers ("0.950" -> "0.95") that the report already formatted."""
    return tabulate(rows[1:], headers=rows[0], tablefmt="github", disable_numparse=True)


def html_table(rows: list[list[str]]) -> str:
    """The same table as HTML, the first row as header cells, every cell escaped."""
    return tabulate(rows[1:], headers=rows[0], tablefmt="html", disable_numparse=True)


CURVES = (("pred_loss", "train", "prediction loss (train)"), ("effective_rank", "train", "effective rank (train)"),
          ("embedding_std", "train", "per-dimension std (train)"),
          ("straightness", "val", "straightness (held-out episodes)"))
"""(metric, split, title) of each panel of curves.png."""


def plot_curves(summaries: list[dict[str, Any]], names: list[str], path: Path) -> Path:
    """The runs' training curves overlaid, a panel per metric."""
    plt = pyplot()

    figure, axes = plt.subplots(1, len(CURVES), figsize=(4.2 * len(CURVES), 3.4))
    for axis, (metric, split, title) in zip(axes, CURVES, strict=True):
        for summary, name in zip(summaries, names, strict=True):
            points = [(row["step"], row[metric]) for row in summary["metrics"]
                      if row.get("split") == split and row.get(metric) is not None]
            if points:
                axis.plot(*zip(*points, strict=True), "o-" if split == "val" else "-", label=name, lw=1, ms=3)
        axis.set_title(title)
        axis.set_xlabel("step")
        if metric == "pred_loss":
            axis.set_yscale("log")
        if axis.lines:
            axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def report(runs: list[Path], out: Path, config: ReportConfig | None = None,
           log: Callable[[str], None] = print) -> dict[str, Any]:
    """Gather every run, write OUT/report.md, OUT/report.html, OUT/curves.png and OUT/report.json; returns
    {"markdown": the table as text, "table": its rows of cells, "runs": the per-run numbers}."""
    config = config or ReportConfig()
    if not runs:
        raise LewmError("report: name at least one run directory")
    runs = [Path(run) for run in runs]
    for run in runs:
        if not (run / "checkpoints" / "last.pt").is_file():
            raise LewmError(f"{run}: not a trained run (no checkpoints/last.pt)")
    summaries = [gather(run, config, log) for run in runs]
    names = _run_names(runs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = comparison_table(summaries, names)
    table = markdown_table(rows)
    plot_curves(summaries, names, out / "curves.png")
    images: list[tuple[str, str]] = [("Training curves", "curves.png")]
    for summary, name in zip(summaries, names, strict=True):
        for kind, source in (("surprise", Path(summary["run"]) / "surprise" / "surprise.png"),
                             ("planning", Path(summary["run"]) / "eval" / "success.png")):
            if source.is_file():
                copy = f"{name.replace('/', '_')}_{kind}.png"
                shutil.copyfile(source, out / copy)
                images.append((f"{name}: {kind}", copy))
    run_list = ", ".join(f"`{summary['run']}`" for summary in summaries)
    markdown = "\n".join(
        ["# lewm report", "", f"Runs: {run_list}", "", table, "",
         "Probe: z-scored MSE and Pearson r on held-out episodes. Straightness: mean cosine of consecutive latent "
         "velocities. Surprise: one-sided paired t-test against the unperturbed control at the event frame.", ""]
        + [f"## {title}\n\n![{title}]({file})\n" for title, file in images]
    )
    atomic_write_text(out / "report.md", markdown)
    page = ["<!doctype html><meta charset='utf-8'><title>lewm report</title>",
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #bbb;padding:4px 8px;text-align:left}img{max-width:100%}</style>",
            "<h1>lewm report</h1>", html_table(rows),
            *(f"<h2>{html.escape(title)}</h2><img src='{file}' alt='{html.escape(title)}'>" for title, file in images)]
    atomic_write_text(out / "report.html", "\n".join(page))
    numbers = {"runs": [{key: value for key, value in s.items() if key != "metrics"} for s in summaries],
               "table": rows}
    atomic_write_text(out / "report.json", json.dumps(numbers, indent=1))
    return {"markdown": table, **numbers}
