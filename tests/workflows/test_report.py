"""lewm report: one table and one page comparing a LeWM and a PLDM run on the same data, cached per run."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from lewm.cli.main import run
from lewm.training import train
from lewm.workflows.report import html_table, markdown_table


@pytest.fixture(scope="module")
def pldm_tworoom_run(tworoom_run: tuple[Path, Path], tiny_config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data, _ = tworoom_run
    out = tmp_path_factory.mktemp("pldm") / "pldm"
    config = tiny_config(data, out, steps=300)
    config.objective.kind = "pldm"
    train(config)
    return out


@pytest.mark.slow
def test_report_compares_lewm_and_pldm(tworoom_run: tuple[Path, Path], pldm_tworoom_run: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import lewm.runs.loading

    _, lewm_run = tworoom_run
    checkpoint_reads: list[Path] = []
    real_load = lewm.runs.loading.load_checkpoint
    monkeypatch.setattr(lewm.runs.loading, "load_checkpoint",
                        lambda path, **kwargs: checkpoint_reads.append(path) or real_load(path, **kwargs))
    out, numbers = tmp_path / "report", tmp_path / "report.json"
    argv = ["report", str(lewm_run), str(pldm_tworoom_run), "--out", str(out), "--env", "two-room", "--evaluate",
            "--eval-episodes", "4", "--json", str(numbers)]
    assert run(argv) == 0
    # each run's checkpoint is read once although probe, straightness, surprise and eval all ran on it
    assert sorted(map(str, checkpoint_reads)) == sorted(str(Path(r) / "checkpoints" / "last.pt")
                                                        for r in (lewm_run, pldm_tworoom_run))
    printed = capsys.readouterr().out
    for label in ("probe r, linear", "straightness", "surprise, teleport", "planning success", "random policy"):
        assert label in printed
    assert "lewm (lambda 0.1)" in printed and "| pldm" in printed
    result = json.loads(numbers.read_text())
    lewm_numbers, pldm_numbers = result["runs"]
    assert lewm_numbers["objective"] == "lewm" and pldm_numbers["objective"] == "pldm"
    for summary in result["runs"]:
        folder = Path(summary["run"])
        # the numbers in the table are the ones cached in each run
        assert json.loads((folder / "analysis" / "probe.json").read_text())["proprio"]["linear"]["r"] == \
            summary["probe"]["linear"]["r"]
        assert -1 <= summary["straightness"]["straightness"] <= 1
        assert summary["surprise"]["teleport"]["n"] >= 3
        assert summary["eval"]["episodes"] == 4 and 0 <= summary["eval"]["success_rate"] <= 1
        assert (folder / "eval" / "eval.json").is_file() and (folder / "surprise" / "surprise.png").is_file()
    assert lewm_numbers["probe"]["linear"]["r"] > 0.9  # the 3000-step tiny LeWM model encodes the agent
    page = (out / "report.html").read_text()
    assert page.count("<tr>") == len(result["table"]) and "curves.png" in page
    assert "| probe r, linear" in (out / "report.md").read_text()
    assert (out / "curves.png").stat().st_size > 20_000
    assert len(list(out.glob("*_surprise.png"))) == 2 and len(list(out.glob("*_planning.png"))) == 2
    # a second report reuses every cached number (nothing recomputed: the files are untouched)
    folders = [Path(summary["run"]) for summary in result["runs"]]
    cached = [path for folder in folders for path in (*folder.glob("analysis/*.json"), folder / "eval" / "eval.json",
                                                      folder / "surprise" / "surprise.json")]
    assert len(cached) == 8
    stamps = {path: path.stat().st_mtime_ns for path in cached}
    assert run(argv) == 0
    assert stamps == {path: path.stat().st_mtime_ns for path in cached}


def test_report_errors_name_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing" in err and "not a trained run" in err and len(err.splitlines()) == 1
    assert run(["report", "--out", str(tmp_path / "r")]) == 2
    assert "at least one run" in capsys.readouterr().err


def test_tables_keep_every_cell_as_written_and_escape_html() -> None:
    """One header row and a row per quantity, in Markdown and in HTML; numbers stay the text the report chose
    ("0.100" is not shortened to 0.1) and markup in a cell is shown, not interpreted."""
    rows = [["", "lewm", "runs/<b>"], ["training steps", "1500", "300"], ["probe r, linear", "0.100", "0.950"],
            ["planning success (95% CI)", "84% (70%-93%)", "0.0100"]]  # the last column is all numbers
    lines = markdown_table(rows).splitlines()
    assert len(lines) == len(rows) + 1 and set(lines[1]) <= {"|", "-"}  # header, rule, one line per row
    assert len({len(line) for line in lines}) == 1  # aligned columns
    for line, row in zip([lines[0], *lines[2:]], rows, strict=True):
        assert [cell.strip() for cell in line.strip("|").split("|")] == row
    page = html_table(rows)
    assert page.count("<tr>") == len(rows) and page.count("<th>") == len(rows[0])
    assert [html.unescape(cell.strip()) for cell in re.findall(r"<t[hd]>(.*?)</t[hd]>", page)] == sum(rows, [])
    assert "runs/&lt;b&gt;" in page and "<b>" not in page
