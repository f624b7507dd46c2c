"""Reading and writing official LeWM checkpoint folders (`weights.pt` + `config.json`), locally or on the hub.

A released checkpoint is a folder with `weights.pt` (a plain state dict) and `config.json` (the model config);
`SRC` is such a folder or `hf:OWNER/NAME[@REVISION]`, fetched with `huggingface_hub` into its usual cache
(`HF_HOME`, `HF_HUB_OFFLINE` and a token from `hf auth login` are honoured). lewm's exports add `lewm.json`,
which the official loader never opens: the frameskip and action statistics the official format does not hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lewm.errors import LewmError, first_line
from lewm.utils.io import atomic_write, atomic_write_text

WEIGHTS = "weights.pt"
CONFIG = "config.json"
SIDE_FILE = "lewm.json"
HUB_PREFIX = "hf:"


@dataclass
class OfficialFolder:
    """The files of one official checkpoint, wherever they came from."""

    source: str
    """What the user named: a folder path or hf:OWNER/NAME[@REVISION]."""
    weights: Path
    """Local path of weights.pt."""
    config: dict[str, Any]
    """config.json, parsed."""
    side: dict[str, Any] | None
    """lewm.json (frameskip, action statistics) when the folder was written by `lewm export`."""
    revision: str | None = None
    """The hub commit the files came from (None for a local folder)."""


def parse_hub_id(source: str) -> tuple[str, str | None]:
    """'hf:OWNER/NAME@REV' -> ('OWNER/NAME', 'REV'); the revision is None when absent."""
    spec = source[len(HUB_PREFIX):]
    repo, _, revision = spec.partition("@")
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts) or (_ and not revision) or "@" in revision:
        raise LewmError(f"{source}: a hub checkpoint is named hf:OWNER/NAME or hf:OWNER/NAME@REVISION")
    return repo, revision or None


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LewmError(f"{path}: cannot read {what} ({first_line(error)})") from error
    if not isinstance(value, dict):
        raise LewmError(f"{path}: {what} must hold a JSON object, got {type(value).__name__}")
    return value


def read_folder(folder: Path, source: str | None = None, revision: str | None = None) -> OfficialFolder:
    """The checkpoint in `folder`; a missing folder or file is a one-line `LewmError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LewmError(f"{folder}: no such folder (expected one with {WEIGHTS} and {CONFIG}, or hf:OWNER/NAME)")
    for name in (WEIGHTS, CONFIG):
        if not (folder / name).is_file():
            raise LewmError(f"{folder}: no {name} in this folder (an official checkpoint holds {WEIGHTS} and "
                            f"{CONFIG})")
    side_path = folder / SIDE_FILE
    side = _read_json(side_path, SIDE_FILE) if side_path.is_file() else None
    return OfficialFolder(source=source or str(folder.resolve()), weights=folder / WEIGHTS,
                          config=_read_json(folder / CONFIG, CONFIG), side=side, revision=revision)


def download_from_hub(source: str) -> OfficialFolder:
    """Fetch weights.pt, config.json (and lewm.json when there is one) of hf:OWNER/NAME[@REV] through the cache."""
    repo, revision = parse_hub_id(source)
    try:
        import huggingface_hub
        from huggingface_hub import errors as hub_errors
    except ImportError as error:
        raise LewmError(f"{source}: hub checkpoints need huggingface_hub (pip install huggingface_hub)") from error
    try:
        paths = [Path(huggingface_hub.hf_hub_download(repo, name, revision=revision)) for name in (CONFIG, WEIGHTS)]
    except hub_errors.LocalEntryNotFoundError as error:
        raise LewmError(f"{source}: not in the Hugging Face cache and the hub cannot be reached (no network, or "
                        "HF_HUB_OFFLINE=1): connect once, or copy the folder here and import it by path") from error
    except hub_errors.RepositoryNotFoundError as error:
        raise LewmError(f"{source}: no such repository on the hub (or it is private: log in with "
                        "`hf auth login`)") from error
    except hub_errors.RevisionNotFoundError as error:
        raise LewmError(f"{source}: the repository has no revision {revision!r}") from error
    except hub_errors.EntryNotFoundError as error:
        raise LewmError(f"{source}: the repository lacks {CONFIG} or {WEIGHTS}") from error
    except hub_errors.HfHubHTTPError as error:  # after its subclasses above: a 5xx, a 401, a rate limit ...
        raise LewmError(f"{source}: the hub refused the download ({first_line(error)})") from error
    folder = paths[0].parent
    try:  # lewm's side file, present only in repositories written by `lewm export`
        huggingface_hub.hf_hub_download(repo, SIDE_FILE, revision=revision)
    except (hub_errors.HfHubHTTPError, hub_errors.LocalEntryNotFoundError, hub_errors.EntryNotFoundError):
        pass
    # The cache keeps files under snapshots/<commit>/: the commit records exactly which weights were imported.
    return read_folder(folder, source=source, revision=folder.name)


def resolve(source: str) -> OfficialFolder:
    """An official checkpoint from a folder path or a hub id."""
    if str(source).startswith(HUB_PREFIX):
        return download_from_hub(str(source))
    return read_folder(Path(source))


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in weights.pt (tensors only, loaded without running pickled code)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt file can fail anywhere in the unpickler (IndexError, KeyError ...)
        raise LewmError(f"{path}: not a readable PyTorch state dict ({first_line(error)})") from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a Lightning checkpoint: the model's weights sit under "state_dict" ...
        if state and all(key.startswith("model.") for key in state):
            state = {key[len("model."):]: value for key, value in state.items()}  # ... prefixed with "model."
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LewmError(f"{path}: expected a state dict (parameter name -> tensor), got {type(state).__name__}")
    return state


def write_folder(out: Path, weights: dict[str, torch.Tensor], config: dict[str, Any], side: dict[str, Any]) -> None:
    """weights.pt, config.json and lewm.json in `out`, each written atomically."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LewmError(f"{out}: exists and is not a folder")
    atomic_write(out / WEIGHTS, lambda stream: torch.save(weights, stream))
    atomic_write_text(out / CONFIG, json.dumps(config, indent=2) + "\n")
    atomic_write_text(out / SIDE_FILE, json.dumps(side, indent=2) + "\n")
