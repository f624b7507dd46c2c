"""Pixel preprocessing and the ViT: normalisation, resizing, key names, equality with transformers' ViT."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from lewm.config import EncoderConfig
from lewm.model import PixelPreprocess, build_vit, preprocess_pixels
from lewm.model.encoder import IMAGENET_MEAN, IMAGENET_STD

TINY_VIT = EncoderConfig(image_size=32, patch_size=8, width=32, depth=2, heads=2, mlp_dim=64)


def test_preprocess_uint8_and_float_agree_and_normalise() -> None:
    pixels = torch.randint(0, 256, (2, 4, 3, 32, 32), dtype=torch.uint8)
    from_uint8 = preprocess_pixels(pixels, 32)
    from_float = preprocess_pixels(pixels.float() / 255.0, 32)
    assert from_uint8.shape == (2, 4, 3, 32, 32) and from_uint8.dtype == torch.float32
    torch.testing.assert_close(from_uint8, from_float)
    black = preprocess_pixels(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), 32)
    expected = -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(black[0, :, 5, 7], expected)


def _official_preprocess(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The reference's order: uint8 -> [0, 1], ImageNet-normalise, then antialiased bilinear resize to size."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    normalised = (pixels.float() / 255.0 - mean) / std  # (N, 3, H, W)
    if tuple(normalised.shape[-2:]) == size:
        return normalised
    return F.interpolate(normalised, size=size, mode="bilinear", align_corners=False, antialias=True)


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (48, 40, (38, 32)),  # int(32 * 48 / 40) = 38 (38.4 truncated)
        (40, 48, (32, 38)),
        (30, 100, (32, 106)),  # upscaled: int(32 * 100 / 30) = 106 (106.67 truncated)
        (64, 64, (32, 32)),
        (24, 24, (32, 32)),
        (32, 45, (32, 45)),  # shorter side already 32: no resize
    ],
)
def test_preprocess_resizes_shorter_side_like_the_reference(height: int, width: int,
                                                            expected: tuple[int, int]) -> None:
    torch.manual_seed(0)
    pixels = torch.randint(0, 256, (4, 3, height, width), dtype=torch.uint8)
    out = preprocess_pixels(pixels, 32)
    assert out.shape == (4, 3, *expected)
    reference = _official_preprocess(pixels, expected)
    assert (out - reference).abs().max().item() < 1e-5


def test_preprocess_resizes_any_leading_shape() -> None:
    pixels = torch.randint(0, 256, (2, 3, 3, 48, 40), dtype=torch.uint8)
    out = preprocess_pixels(pixels, 32)
    assert out.shape == (2, 3, 3, 38, 32)
    flat = _official_preprocess(pixels.reshape(6, 3, 48, 40), (38, 32))
    torch.testing.assert_close(out.reshape(6, 3, 38, 32), flat, atol=1e-5, rtol=0)
    # A constant image stays constant after antialiased bilinear resizing.
    resized = preprocess_pixels(torch.full((1, 3, 48, 48), 0.5), 32)
    torch.testing.assert_close(resized, preprocess_pixels(torch.full((1, 3, 32, 32), 0.5), 32))


def test_preprocess_module_matches_function_and_has_no_state() -> None:
    module = PixelPreprocess(32)
    pixels = torch.randint(0, 256, (5, 3, 20, 24), dtype=torch.uint8)
    torch.testing.assert_close(module(pixels), preprocess_pixels(pixels, 32))
    assert module.state_dict() == {}


def test_preprocess_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        preprocess_pixels(torch.zeros(2, 4, 32, 32), 32)
    with pytest.raises(ValueError):
        preprocess_pixels(torch.zeros(2, 3, 32, 32, dtype=torch.int64), 32)


def test_vit_parameter_names_follow_hugging_face() -> None:
    names = set(build_vit(TINY_VIT).state_dict())
    for key in (
        "embeddings.cls_token",
        "embeddings.position_embeddings",
        "embeddings.patch_embeddings.projection.weight",
        "encoder.layer.1.attention.attention.query.weight",
        "encoder.layer.1.attention.attention.key.bias",
        "encoder.layer.1.attention.attention.value.weight",
        "encoder.layer.0.attention.output.dense.weight",
        "encoder.layer.0.intermediate.dense.weight",
        "encoder.layer.0.output.dense.weight",
        "encoder.layer.0.layernorm_before.weight",
        "encoder.layer.0.layernorm_after.bias",
        "layernorm.weight",
    ):
        assert key in names, key
    assert not any("pooler" in name for name in names)


def _to_transformers_key(key: str, hf_keys: set[str]) -> str:
    """Our (transformers 4) ViT key -> the installed transformers' key (5.x renamed the layer internals)."""
    if key in hf_keys:
        return key
    renames = [
        (r"encoder\.layer\.(\d+)\.attention\.attention\.query\.", r"layers.\1.attention.q_proj."),
        (r"encoder\.layer\.(\d+)\.attention\.attention\.key\.", r"layers.\1.attention.k_proj."),
        (r"encoder\.layer\.(\d+)\.attention\.attention\.value\.", r"layers.\1.attention.v_proj."),
        (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layers.\1.attention.o_proj."),
        (r"encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layers.\1.mlp.fc1."),
        (r"encoder\.layer\.(\d+)\.output\.dense\.", r"layers.\1.mlp.fc2."),
        (r"encoder\.layer\.(\d+)\.", r"layers.\1."),
    ]
    for pattern, replacement in renames:
        new, count = re.subn(pattern, replacement, key)
        if count:
            return new
    raise KeyError(key)


def _tiny_pair(image_size: int, patch_size: int, width: int, depth: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Our ViT and `transformers.ViTModel` (no pooler, no mask token) sharing random, non-trivial weights."""
    import transformers  # a test dependency (pyproject [test]): a missing install fails, never skips
    torch.manual_seed(0)
    cfg = EncoderConfig(image_size=image_size, patch_size=patch_size, width=width, depth=depth, heads=2,
                        mlp_dim=2 * width)
    ours = build_vit(cfg).eval()
    with torch.no_grad():  # non-zero biases and LayerNorm affines, and position embeddings far from zero
        for param in ours.parameters():
            param.add_(torch.randn_like(param) * 0.1)
        ours.embeddings.position_embeddings.mul_(10.0)
    hf_config = transformers.ViTConfig(
        hidden_size=width, num_hidden_layers=depth, num_attention_heads=2, intermediate_size=2 * width,
        image_size=image_size, patch_size=patch_size, num_channels=3, layer_norm_eps=1e-12, qkv_bias=True,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, hidden_act="gelu",
    )
    reference = transformers.ViTModel(hf_config, add_pooling_layer=False, use_mask_token=False).eval()
    hf_keys = set(reference.state_dict())
    mapped = {_to_transformers_key(key, hf_keys): value for key, value in ours.state_dict().items()}
    assert set(mapped) == hf_keys
    reference.load_state_dict(mapped, strict=True)
    return ours, reference


def _max_difference_with_transformers(ours: torch.nn.Module, reference: torch.nn.Module, height: int,
                                      width: int, patch_size: int) -> float:
    images = torch.randn(3, 3, height, width)
    with torch.no_grad():
        expected = reference(pixel_values=images, interpolate_pos_encoding=True).last_hidden_state
        got = ours(images)
    assert got.shape == expected.shape == (3, 1 + (height // patch_size) * (width // patch_size), ours.config.width)
    return (got - expected).abs().max().item()


def test_vit_equals_transformers_vit_with_the_same_weights() -> None:
    ours, reference = _tiny_pair(image_size=32, patch_size=8, width=32, depth=2)
    assert _max_difference_with_transformers(ours, reference, 32, 32, 8) < 1e-5


@pytest.mark.parametrize(
    ("height", "width"),
    [
        (56, 56),  # the built size: the learned table as is
        (84, 84),  # larger square: 6 x 6 grid from the 4 x 4 table
        (28, 28),  # smaller square: 2 x 2 grid
        (56, 84),  # non-square: 4 x 6
        (84, 56),  # non-square: 6 x 4
        (60, 90),  # not a multiple of the patch: the convolution drops 4 rows and 6 columns, grid 4 x 6
        (60, 60),  # 4 x 4 patches, square: the table as is although the pixels differ
        (28, 112),  # as many patches as the table (2 x 8 = 16) but not square: interpolated
    ],
)
def test_vit_interpolates_positions_like_transformers(height: int, width: int) -> None:
    ours, reference = _tiny_pair(image_size=56, patch_size=14, width=24, depth=1)
    assert _max_difference_with_transformers(ours, reference, height, width, 14) < 1e-5


def test_vit_positions_change_only_off_the_built_grid() -> None:
    ours, _ = _tiny_pair(image_size=56, patch_size=14, width=24, depth=1)
    table = ours.embeddings.position_embeddings
    assert ours.embeddings.positions(56, 56) is table  # fast path: no new tensor, nothing computed
    resized = ours.embeddings.positions(28, 112)  # same count, other layout: the values must move
    assert resized.shape == table.shape
    assert (resized - table).abs().max().item() > 1e-2
    torch.testing.assert_close(resized[:, :1], table[:, :1])  # the CLS row is never interpolated
