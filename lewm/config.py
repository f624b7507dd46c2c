"""Typed configuration for lewm: dataclasses with a docstring per field, presets, validation, YAML round trip.

Three presets share one schema:
- ``paper``: the sizes and recipe of the LeWM paper (ViT-Tiny at 224 px, 10M-parameter predictor, batch 128).
- ``cpu``: a small model at 64 px sized for a 2-core CPU (the demo's preset).
- ``tiny``: a toy model that trains in seconds, for tests and smoke runs.

Every field can be overridden on the command line (``--model.encoder.depth 4``); invalid values raise a
`LewmError` naming the field and the value.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import dacite
import tyro
import yaml

from lewm.errors import LewmError

PRESETS = ("paper", "cpu", "tiny")
PresetName = Literal["paper", "cpu", "tiny"]


def is_number(value: object) -> bool:
    """An int or a float, not a bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_field(condition: bool, name: str, value: Any, requirement: str, where: str = "config") -> None:
    """Raise a `LewmError` naming the field and its value when `condition` is false."""
    if not condition:
        raise LewmError(f"{where}: {name} = {value!r} is invalid: {requirement}")


def check_positive_ints(obj: Any, names: tuple[str, ...], prefix: str, where: str = "config") -> None:
    """Every named field of `obj` must be an integer >= 1 (messages read `where: prefix.name = value ...`)."""
    for name in names:
        value = getattr(obj, name)
        check_field(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                    f"{prefix}.{name}" if prefix else name, value, "must be an integer >= 1", where)


@dataclass
class EncoderConfig:
    """ViT encoder trained from scratch; the frame embedding is its CLS token after the final LayerNorm."""

    image_size: int = 224
    """Side of the square image the ViT is built for; frames are resized so their shorter side is this long
    (aspect kept, as the official preprocessing does) and other grids get interpolated position embeddings."""
    patch_size: int = 14
    """Side of a square patch in pixels; must divide image_size."""
    width: int = 192
    """Hidden size of the ViT (192 for ViT-Tiny)."""
    depth: int = 12
    """Number of transformer layers."""
    heads: int = 3
    """Attention heads; must divide width."""
    mlp_dim: int = 768
    """Hidden size of each layer's MLP."""

    def validate(self, prefix: str = "model.encoder") -> None:
        check_positive_ints(self, ("image_size", "patch_size", "width", "depth", "heads", "mlp_dim"), prefix)
        check_field(self.image_size % self.patch_size == 0, f"{prefix}.patch_size", self.patch_size,
               f"must divide image_size {self.image_size}")
        check_field(self.width % self.heads == 0, f"{prefix}.heads", self.heads, f"must divide width {self.width}")


@dataclass
class PredictorConfig:
    """Causal transformer over time, conditioned on actions by AdaLN-zero."""

    depth: int = 6
    """Number of transformer blocks."""
    heads: int = 16
    """Attention heads."""
    head_dim: int = 64
    """Width of each head; the attention width is heads * head_dim (1024 in the paper)."""
    mlp_dim: int = 2048
    """Hidden size of each block's MLP."""
    dropout: float = 0.1
    """Dropout in attention and MLP (the paper's ablation: 0.1 best)."""

    def validate(self, prefix: str = "model.predictor") -> None:
        check_positive_ints(self, ("depth", "heads", "head_dim", "mlp_dim"), prefix)
        check_field(0.0 <= self.dropout < 1.0, f"{prefix}.dropout", self.dropout, "must be in [0, 1)")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a LeWM model (saved with every run)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The ViT encoder."""
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    """The action-conditioned predictor."""
    embed_dim: int = 192
    """D: size of the projected embedding that SIGReg shapes and the planner compares."""
    projector_hidden: int = 2048
    """Hidden size of the MLP+BatchNorm projector and prediction projector."""
    action_hidden: int = 768
    """Hidden size of the action encoder's MLP."""
    action_patch: int = 10
    """Output size of the action encoder's first (per-block) linear layer."""
    history: int = 3
    """Frames of context the predictor sees (paper: 3; 1 for Two-Room)."""
    frameskip: int = 5
    """Raw environment steps between two frames; each action block holds frameskip raw actions."""
    action_dim: int | None = None
    """A: raw action size; None means read it from the dataset when training starts."""

    def validate(self, prefix: str = "model") -> None:
        self.encoder.validate(f"{prefix}.encoder")
        self.predictor.validate(f"{prefix}.predictor")
        check_positive_ints(
            self, ("embed_dim", "projector_hidden", "action_hidden", "action_patch", "history", "frameskip"), prefix
        )
        if self.action_dim is not None:
            check_field(self.action_dim >= 1, f"{prefix}.action_dim", self.action_dim, "must be >= 1 or None")

    @property
    def action_block_dim(self) -> int:
        """Size of one flattened action block (frameskip * A), the action encoder's input."""
        if self.action_dim is None:
            raise LewmError("config: model.action_dim is None: it must be set (or read from the dataset)")
        return self.frameskip * self.action_dim


@dataclass
class PLDMConfig:
    """Coefficients of the PLDM baseline objective (docs/reference.md section 9: the LeWM authors' Push-T grid
    search)."""

    variance: float = 18.0
    """alpha: hinge keeping each dimension's std across the batch above 1."""
    covariance: float = 12.0
    """beta: off-diagonal covariance across the batch."""
    time_similarity: float = 0.2
    """gamma: squared distance between consecutive embeddings of a clip."""
    time_variance: float = 0.7
    """zeta: std hinge across the frames of each clip."""
    time_covariance: float = 0.0
    """nu: off-diagonal covariance across the frames of each clip."""
    inverse_dynamics: float = 0.0
    """mu: MSE of a small head predicting the action block from two consecutive embeddings."""

    def validate(self, prefix: str = "objective.pldm") -> None:
        for name, value in dataclasses.asdict(self).items():
            check_field(value >= 0.0, f"{prefix}.{name}", value, "must be >= 0")


@dataclass
class ObjectiveConfig:
    """The training objective: LeWM (pred_loss + sigreg_weight * sigreg) or the PLDM baseline."""

    kind: Literal["lewm", "pldm"] = "lewm"
    """'lewm' (prediction + lambda * SIGReg) or 'pldm' (prediction + six VICReg-style terms); `--objective pldm`."""
    sigreg_weight: float = 0.1
    """lambda, the only loss hyper-parameter (paper 0.1; reference config 0.09)."""
    num_projections: int = 1024
    """M: random unit directions per step onto which embeddings are projected."""
    num_knots: int = 17
    """Knots of the characteristic-function integral on [0, knot_max]."""
    knot_max: float = 3.0
    """Upper end of the integration interval."""
    pldm: PLDMConfig = field(default_factory=PLDMConfig)
    """PLDM coefficients (used when kind = 'pldm')."""

    def validate(self, prefix: str = "objective") -> None:
        check_field(self.kind in ("lewm", "pldm"), f"{prefix}.kind", self.kind, "must be 'lewm' or 'pldm'")
        check_field(self.sigreg_weight >= 0.0, f"{prefix}.sigreg_weight", self.sigreg_weight, "must be >= 0")
        check_field(self.num_projections >= 1, f"{prefix}.num_projections", self.num_projections, "must be >= 1")
        check_field(self.num_knots >= 2, f"{prefix}.num_knots", self.num_knots, "must be >= 2")
        check_field(self.knot_max > 0.0, f"{prefix}.knot_max", self.knot_max, "must be > 0")
        self.pldm.validate(f"{prefix}.pldm")


@dataclass
class DataConfig:
    """Where episodes come from and how clips are cut from them."""

    num_preds: int = 1
    """Frames predicted ahead; a clip holds history + num_preds frames."""
    val_fraction: float = 0.1
    """Share of episodes held out for validation (split by episode, never inside one)."""
    num_workers: int | None = None
    """DataLoader worker processes, each with its own HDF5 handle; None: 0 on the CPU (the cores train), and on
    CUDA up to 8 per GPU process so reading and decoding frames keeps the GPU busy."""
    pixels_key: str = "pixels"
    """Name of the image column in the HDF5 file."""
    action_key: str = "action"
    """Name of the action column in the HDF5 file."""

    def validate(self, prefix: str = "data") -> None:
        check_field(self.num_preds >= 1, f"{prefix}.num_preds", self.num_preds, "must be >= 1")
        check_field(0.0 <= self.val_fraction < 1.0, f"{prefix}.val_fraction", self.val_fraction, "must be in [0, 1)")
        if self.num_workers is not None:
            check_field(self.num_workers >= 0, f"{prefix}.num_workers", self.num_workers, "must be >= 0 or None")


@dataclass
class OptimConfig:
    """AdamW with linear warmup then cosine decay, stepped every optimiser step."""

    batch_size: int = 128
    """Clips per optimiser step over all processes (divided among DDP ranks); the last partial batch is dropped."""
    lr: float = 5e-5
    """Peak learning rate."""
    weight_decay: float = 1e-3
    """AdamW weight decay."""
    warmup_fraction: float = 0.01
    """Share of all steps spent warming the learning rate up linearly from 0."""
    grad_clip: float = 1.0
    """Maximum global gradient norm (0 disables clipping)."""

    def validate(self, prefix: str = "optim") -> None:
        check_field(self.batch_size >= 1, f"{prefix}.batch_size", self.batch_size, "must be >= 1")
        check_field(self.lr > 0.0, f"{prefix}.lr", self.lr, "must be > 0")
        check_field(self.weight_decay >= 0.0, f"{prefix}.weight_decay", self.weight_decay, "must be >= 0")
        check_field(0.0 <= self.warmup_fraction < 1.0, f"{prefix}.warmup_fraction", self.warmup_fraction,
               "must be in [0, 1)")
        check_field(self.grad_clip >= 0.0, f"{prefix}.grad_clip", self.grad_clip, "must be >= 0")


@dataclass
class TrainConfig:
    """A whole training run: data, model, objective, optimiser and bookkeeping."""

    data_path: Annotated[Path | None, tyro.conf.arg(name="data")] = None
    """HDF5 episode file in the community layout (--data)."""
    out: Path | None = None
    """Run directory for config, checkpoints, metrics and plots (--out)."""
    preset: PresetName = "paper"
    """Preset the defaults came from (recorded for reference)."""
    steps: int | None = None
    """Total optimiser steps; overrides epochs when set."""
    epochs: int | None = 10
    """Passes over the training clips (used when steps is None)."""
    resume: bool = False
    """Continue from OUT/checkpoints/last.pt (model, optimiser, schedule, step, RNG)."""
    seed: int = 3072
    """Seed for initialisation, data order, dropout and SIGReg directions."""
    device: str = "auto"
    """'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """'auto' means bf16 autocast on CUDA and fp32 on CPU."""
    compile: bool = False
    """Wrap the model in torch.compile."""
    sync_batchnorm: bool = True
    """Multi-GPU: share BatchNorm statistics across GPUs (nn.SyncBatchNorm; CUDA only, CPU runs keep local)."""
    log_every: int = 10
    """Write a metrics line every this many steps."""
    checkpoint_every: int = 500
    """Write checkpoints/last.pt every this many steps (and at every epoch end and at the end)."""
    keep_step_checkpoints: bool = False
    """Also keep checkpoints/step_XXXXXXX.pt copies."""
    val_every: int | None = None
    """Also validate every this many steps (validation always runs at each epoch end and at the end)."""
    max_val_batches: int = 50
    """Upper bound on validation batches per evaluation (keeps validation short on big datasets)."""
    threads: int | None = None
    """CPU threads for torch (None keeps torch's default)."""
    progress: bool = True
    """Show a progress bar (rank 0 only)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Model sizes."""
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    """Loss weights and SIGReg settings."""
    data: DataConfig = field(default_factory=DataConfig)
    """Clip sampling and loading."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimiser and schedule."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field; raise a `LewmError` naming the first bad one."""
        check_field(self.preset in PRESETS, "preset", self.preset, f"must be one of {', '.join(PRESETS)}")
        if self.steps is not None:
            check_field(self.steps >= 1, "steps", self.steps, "must be >= 1")
        if self.epochs is not None:
            check_field(self.epochs >= 1, "epochs", self.epochs, "must be >= 1")
        check_field(self.steps is not None or self.epochs is not None, "epochs", self.epochs,
               "steps and epochs cannot both be None")
        check_field(self.log_every >= 1, "log_every", self.log_every, "must be >= 1")
        check_field(self.checkpoint_every >= 1, "checkpoint_every", self.checkpoint_every, "must be >= 1")
        if self.val_every is not None:
            check_field(self.val_every >= 1, "val_every", self.val_every, "must be >= 1 or None")
        check_field(self.max_val_batches >= 1, "max_val_batches", self.max_val_batches, "must be >= 1")
        if self.threads is not None:
            check_field(self.threads >= 1, "threads", self.threads, "must be >= 1")
        check_field(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"), "device",
               self.device, "must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        check_field(self.precision in ("auto", "bf16", "fp32"), "precision", self.precision,
               "must be 'auto', 'bf16' or 'fp32'")
        self.model.validate()
        self.objective.validate()
        self.data.validate()
        self.optim.validate()


def preset(name: str) -> TrainConfig:
    """The default `TrainConfig` of a named preset."""
    if name == "paper":
        return TrainConfig(preset="paper")
    if name == "cpu":
        return TrainConfig(
            preset="cpu",
            epochs=None,
            steps=1500,
            threads=None,
            model=ModelConfig(
                encoder=EncoderConfig(image_size=64, patch_size=8, width=128, depth=3, heads=4, mlp_dim=512),
                predictor=PredictorConfig(depth=3, heads=4, head_dim=32, mlp_dim=512, dropout=0.1),
                embed_dim=128,
                projector_hidden=512,
                action_hidden=256,
            ),
            # lambda 0.2 planned better than 0.1 on the demo's Two-Room data (84% vs 76%; 0.02: 16%)
            objective=ObjectiveConfig(sigreg_weight=0.2, num_projections=256),
            optim=OptimConfig(batch_size=64, lr=1e-3, warmup_fraction=0.03),
            checkpoint_every=200,
        )
    if name == "tiny":
        return TrainConfig(
            preset="tiny",
            epochs=None,
            steps=30,
            seed=0,
            model=ModelConfig(
                encoder=EncoderConfig(image_size=32, patch_size=8, width=32, depth=1, heads=2, mlp_dim=64),
                predictor=PredictorConfig(depth=1, heads=2, head_dim=16, mlp_dim=64, dropout=0.1),
                embed_dim=32,
                projector_hidden=64,
                action_hidden=64,
                history=3,
            ),
            objective=ObjectiveConfig(sigreg_weight=0.1, num_projections=64),
            optim=OptimConfig(batch_size=16, lr=1e-3, warmup_fraction=0.1),
            log_every=5,
            checkpoint_every=10,
            max_val_batches=4,
            progress=False,
        )
    raise LewmError(f"config: preset = {name!r} is unknown: choose one of {', '.join(PRESETS)}")


# ---------------------------------------------------------------------------------------------------------
# YAML round trip (the run directory's config.yaml)
# ---------------------------------------------------------------------------------------------------------


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-safe dict of a config dataclass (paths become strings)."""

    def convert(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {key: convert(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [convert(item) for item in value]
        return value

    return convert(dataclasses.asdict(config))


_DACITE = dacite.Config(
    # YAML has no path type; an integer where a float belongs (`lr: 1`) is still that float. Anything else is left
    # as it is, for dacite's type check to reject with the field's path.
    type_hooks={Path: lambda value: Path(value) if isinstance(value, str) else value,
                float: lambda value: float(value) if type(value) is int else value},
    strict=True,
)
"""How `from_dict` builds nested config dataclasses: strict (unknown keys fail), types checked (Literal too)."""


def from_dict(cls: type, values: dict[str, Any], where: str = "config") -> Any:
    """Rebuild a config dataclass from `to_dict` output. Keys missing (configs written by earlier versions) take
    their defaults; an unknown key or a value of the wrong type is a `LewmError` naming its path and value."""
    if not isinstance(values, dict):
        raise LewmError(f"{where}: expected a mapping, got {type(values).__name__}")
    try:
        return dacite.from_dict(cls, values, config=_DACITE)
    except dacite.UnexpectedDataError as error:
        path, value, owner = _first_unknown_key(cls, values) or (", ".join(sorted(error.keys)), None, cls)
        raise LewmError(f"{where}: {path} = {value!r} is invalid: {owner.__name__} has no such field") from None
    except dacite.WrongTypeError as error:
        raise LewmError(f"{where}: {error.field_path} = {error.value!r} is invalid: must be "
                        f"{_type_name(error.field_type)}") from None


def _first_unknown_key(cls: type, values: dict[str, Any], prefix: str = "") -> tuple[str, Any, type] | None:
    """(dotted path, value, dataclass) of the first key of `values` that no (nested) field of `cls` has: dacite
    names the unknown key but not where it sits."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in hints:
            return path, value, cls
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            found = _first_unknown_key(hints[key], value, f"{path}.")
            if found is not None:
                return found
    return None


def _type_name(type_: Any) -> str:
    """'int', 'int or None', "one of 'auto', 'bf16', 'fp32'", 'a path', 'a mapping of ModelConfig fields'."""
    if typing.get_origin(type_) is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(type_)))
    if typing.get_args(type_):
        return " or ".join(_type_name(arg) for arg in typing.get_args(type_))
    if dataclasses.is_dataclass(type_):
        return f"a mapping of {type_.__name__} fields"
    if type_ is Path:
        return "a path"
    return "None" if type_ is type(None) else getattr(type_, "__name__", str(type_))


def save_yaml(config: Any, path: Path) -> None:
    """Write a config as YAML atomically (temp file then rename)."""
    from lewm.utils.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))


def load_train_config(path: Path) -> TrainConfig:
    """Read a run's config.yaml back into a `TrainConfig`."""
    path = Path(path)
    if not path.is_file():
        raise LewmError(f"{path}: config file does not exist")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise LewmError(f"{path}: not valid YAML ({error.__class__.__name__})") from error
    return from_dict(TrainConfig, values, where=str(path))


TRAIN_USAGE = ("lewm train --data FILE.h5 --out RUN_DIR [--preset paper|cpu|tiny] [--steps N | --epochs N] "
               "[--objective lewm|pldm] [--resume]")


def _objective_shorthand(argv: list[str]) -> list[str]:
    """`--objective pldm` (and `--objective=pldm`) is short for `--objective.kind pldm`."""
    out = []
    for index, arg in enumerate(argv):
        if arg.startswith("--objective="):
            out.append("--objective.kind=" + arg.split("=", 1)[1])
        elif arg == "--objective" and index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            out.append("--objective.kind")
        else:
            out.append(arg)
    return out


def parse_train_config(argv: list[str]) -> TrainConfig:
    """`lewm train`'s command line: the preset (or, with --resume, the run's own config.yaml) with every flag on
    top; --data and --out must end up set.

    A first pass reads --preset, --out, --resume, --steps and --epochs, because the defaults tyro shows and fills
    in depend on them. tyro chooses between default objects only through subcommands
    (`tyro.extras.overridable_config_cli`), which would turn `--preset cpu` into a positional `lewm train cpu`,
    and it cannot take defaults from a file named by another flag (--resume --out RUN reads RUN/config.yaml)."""
    argv = _objective_shorthand(argv)
    first = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for flag in ("--preset", "--out", "--steps", "--epochs"):
        first.add_argument(flag, nargs="?")  # a flag without its value is tyro's error to report
    first.add_argument("--resume", nargs="?", const="")
    known, _ = first.parse_known_args(argv)
    if known.steps is not None and known.epochs is not None:
        raise LewmError("train: pass --steps or --epochs, not both")
    saved = Path(known.out) / "config.yaml" if known.out else None
    if known.resume is not None and saved is not None and saved.is_file() and known.preset is None:
        base = load_train_config(saved)
    else:
        name = known.preset or "paper"
        if name not in PRESETS:
            raise LewmError(f"train: --preset {name!r} is unknown: choose one of {', '.join(PRESETS)}")
        base = preset(name)
    if known.epochs is not None:
        base.steps = None  # --epochs N means "train for N epochs", even when the preset counts steps
    base.resume = False  # only the flag below sets it
    config = tyro.cli(TrainConfig, default=base, args=argv, prog="lewm train", description=TRAIN_USAGE)
    for flag, value in (("--data", config.data_path), ("--out", config.out)):
        if value is None:
            raise LewmError(f"{flag}: required, not given (see lewm train --help)")
    return config
