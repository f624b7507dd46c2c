"""Pixel preprocessing and the ViT: normalisation, resizing, key names, equality with transformers' ViT."""

from __future__ import annotations

import re

import pytest
import torch

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


def test_preprocess_resizes_any_leading_shape() -> None:
    pixels = torch.randint(0, 256, (2, 3, 3, 48, 40), dtype=torch.uint8)
    out = preprocess_pixels(pixels, 32)
    assert out.shape == (2, 3, 3, 32, 32)
    # A constant image stays constant after antialiased bilinear resizing.
    resized = preprocess_pixels(torch.full((1, 3, 48, 40), 0.5), 32)
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


def test_vit_equals_transformers_vit_with_the_same_weights() -> None:
    import transformers  # a test dependency (pyproject [test]): a missing install fails, never skips
    torch.manual_seed(0)
    ours = build_vit(TINY_VIT).eval()
    hf_config = transformers.ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32,
        patch_size=8, num_channels=3, layer_norm_eps=1e-12, qkv_bias=True, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, hidden_act="gelu",
    )
    reference = transformers.ViTModel(hf_config, add_pooling_layer=False).eval()
    hf_keys = set(reference.state_dict())
    mapped = {_to_transformers_key(key, hf_keys): value for key, value in ours.state_dict().items()}
    assert set(mapped) == hf_keys
    reference.load_state_dict(mapped, strict=True)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = reference(pixel_values=images).last_hidden_state
        got = ours(images)
    assert got.shape == (3, 1 + 16, 32)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_vit_rejects_wrong_image_size() -> None:
    with pytest.raises(ValueError, match="image_size"):
        build_vit(TINY_VIT)(torch.randn(1, 3, 40, 40))
