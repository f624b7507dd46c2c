"""One device default everywhere: 'auto' (CUDA when available), resolved by `lewm.utils.device.resolve_device`."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lewm.errors import LewmError
from lewm.utils.device import resolve_device


def _cuda(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_auto_is_cuda_when_available_else_cpu(monkeypatch) -> None:
    _cuda(monkeypatch, 0)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device() == torch.device("cpu")
    _cuda(monkeypatch, 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize(("name", "count", "message"), [
    ("gpu", 1, "device = 'gpu' is invalid: use 'auto'"),
    ("cuda:x", 1, "device = 'cuda:x' is invalid"),
    ("cuda", 0, "device = 'cuda' but CUDA is not available on this machine"),
    ("cuda:2", 2, "device = 'cuda:2' but this machine has 2 CUDA device(s)"),
])
def test_bad_devices_are_one_line_errors(monkeypatch, name: str, count: int, message: str) -> None:
    _cuda(monkeypatch, count)
    with pytest.raises(LewmError) as error:
        resolve_device(name)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_every_command_defaults_to_auto() -> None:
    from lewm.cli.eval import EvalArgs
    from lewm.cli.probe import ProbeArgs
    from lewm.cli.straightness import StraightnessArgs
    from lewm.cli.surprise import SurpriseArgs
    from lewm.config import TrainConfig
    from lewm.workflows.lambda_search import LambdaSearchConfig
    from lewm.workflows.report import ReportConfig

    for cls in (EvalArgs, ProbeArgs, StraightnessArgs, SurpriseArgs, TrainConfig, ReportConfig, LambdaSearchConfig):
        assert {f.name: f.default for f in dataclasses.fields(cls)}["device"] == "auto", cls.__name__
