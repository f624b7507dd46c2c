"""The two namings of a Hugging Face ViT's parameters, and the translation between them.

The released LeWM `weights.pt` files name the encoder as transformers 4 did
(`encoder.encoder.layer.{i}.attention.attention.query.weight`); transformers 5 renamed the layer internals
(`encoder.layers.{i}.attention.q_proj.weight`, `mlp.fc1` ...), so checkpoints saved by the reference stack under
transformers 5 carry the new names. lewm's ViT keeps the transformers-4 names (they are the released ones);
these functions bring either naming to it, or take it to the transformers-5 one (which the parity tests need
to load our weights into the installed `transformers.ViTModel`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

ValueT = TypeVar("ValueT")

# (transformers 4 template, transformers 5 template) for the part of a key after "<prefix>"; {i} = layer index.
# The last pair catches what the others leave (layernorm_before / layernorm_after keep their names).
_LAYER_RENAMES: tuple[tuple[str, str], ...] = (
    ("encoder.layer.{i}.attention.attention.query.", "layers.{i}.attention.q_proj."),
    ("encoder.layer.{i}.attention.attention.key.", "layers.{i}.attention.k_proj."),
    ("encoder.layer.{i}.attention.attention.value.", "layers.{i}.attention.v_proj."),
    ("encoder.layer.{i}.attention.output.dense.", "layers.{i}.attention.o_proj."),
    ("encoder.layer.{i}.intermediate.dense.", "layers.{i}.mlp.fc1."),
    ("encoder.layer.{i}.output.dense.", "layers.{i}.mlp.fc2."),
    ("encoder.layer.{i}.", "layers.{i}."),
)


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(template).replace(re.escape("{i}"), r"(\d+)"))


def _rename(key: str, prefix: str, source: int) -> str:
    """`key` with its ViT layer part renamed from naming `source` (0: transformers 4, 1: transformers 5)."""
    if not key.startswith(prefix):
        return key
    rest = key[len(prefix):]
    for pair in _LAYER_RENAMES:
        match = _pattern(pair[source]).match(rest)
        if match:
            renamed = pair[1 - source].replace("{i}", match.group(1))
            return prefix + renamed + rest[match.end():]
    return key


def uses_transformers5_names(state: Mapping[str, object], prefix: str = "encoder.") -> bool:
    """True when the ViT under `prefix` is named the transformers-5 way (`<prefix>layers.{i}...`)."""
    return any(key.startswith(prefix + "layers.") for key in state)


def to_transformers4_names(state: Mapping[str, ValueT], prefix: str = "encoder.") -> dict[str, ValueT]:
    """A state dict whose ViT under `prefix` uses the released (transformers 4) names, whichever it had."""
    if not uses_transformers5_names(state, prefix):
        return dict(state)
    return {_rename(key, prefix, source=1): value for key, value in state.items()}


def to_transformers5_names(state: Mapping[str, ValueT], prefix: str = "encoder.") -> dict[str, ValueT]:
    """A state dict whose ViT under `prefix` uses the transformers 5 names, whichever it had."""
    if uses_transformers5_names(state, prefix):
        return dict(state)
    return {_rename(key, prefix, source=0): value for key, value in state.items()}
