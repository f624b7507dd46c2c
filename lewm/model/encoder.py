"""The frame encoder: a ViT trained from scratch whose CLS token (after the final LayerNorm) embeds a frame.

The ViT is our own small module rather than `transformers.ViTModel`, but it has the same architecture, the
same initialisation and the Hugging Face ViT parameter names that the released LeWM checkpoints use
(`embeddings.cls_token`, `encoder.layer.{i}.attention.attention.query.weight`, `layernorm.weight`, ...).
transformers 5 renamed the ViT internals (`layers.{i}.attention.q_proj`, `mlp.fc1`, ...), so building on
`ViTModel` would tie our checkpoint keys to the installed transformers version; this module keeps them fixed
for every version. `tests/model` checks that its outputs equal `transformers.ViTModel`'s for the same weights.

Pixels stay uint8 until `preprocess_pixels` (run on whatever device the pixels are on): divide by 255,
resize to the encoder's image size when needed, normalise with the ImageNet mean and std.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import pack, rearrange, unpack
from torch import nn

from lewm.config import EncoderConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Hugging Face ViT defaults that `EncoderConfig` does not expose.
_LAYER_NORM_EPS = 1e-12
_INIT_STD = 0.02


# ---------------------------------------------------------------------------------------------------------
# Pixel preprocessing
# ---------------------------------------------------------------------------------------------------------


def preprocess_pixels(
    pixels: torch.Tensor,
    image_size: int,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
) -> torch.Tensor:
    """Turn stored frames into the ViT's input: float, resized to `image_size`, ImageNet-normalised.

    pixels: (..., 3, H, W), uint8 in [0, 255] or floating point in [0, 1]. Returns float32 (..., 3, S, S)
    with S = image_size, on the same device. Frames whose H or W differ from S are resized with bilinear
    interpolation and antialiasing, so datasets rendered at any resolution can feed any encoder.
    `mean` and `std` are (3, 1, 1) tensors on the pixels' device; `PixelPreprocess` passes its buffers so
    nothing is copied from the host on every call (which would also break CUDA-graph capture).
    """
    if pixels.dim() < 3 or pixels.shape[-3] != 3:
        raise ValueError(f"expected pixels of shape (..., 3, H, W), got {tuple(pixels.shape)}")
    if pixels.dtype == torch.uint8:
        images = pixels.float() / 255.0
    elif pixels.is_floating_point():
        images = pixels.float()
    else:
        raise ValueError(f"expected uint8 or floating-point pixels, got {pixels.dtype}")
    height, width = images.shape[-2:]
    if height != image_size or width != image_size:
        flat, packed_shape = pack([images], "* c h w")  # (N, 3, H, W), N = product of the leading dims
        flat = F.interpolate(flat, size=(image_size, image_size), mode="bilinear", align_corners=False,
                             antialias=True)  # (N, 3, S, S)
        (images,) = unpack(flat, packed_shape, "* c h w")  # (..., 3, S, S)
    if mean is None:
        mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(3, 1, 1)
    if std is None:
        std = torch.tensor(IMAGENET_STD, device=images.device).view(3, 1, 1)
    return (images - mean) / std


class PixelPreprocess(nn.Module):
    """`preprocess_pixels` as a module, holding the mean and std as buffers that follow `.to(device)`.

    The buffers are non-persistent so they stay out of the state dict (reference checkpoints have no such
    keys and must load with strict=True).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.image_size = image_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(3, 1, 1), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (..., 3, H, W) uint8 or float in [0, 1] -> (..., 3, S, S) normalised float32."""
        return preprocess_pixels(pixels, self.image_size, self.mean, self.std)


# ---------------------------------------------------------------------------------------------------------
# ViT (Hugging Face parameter names)
# ---------------------------------------------------------------------------------------------------------


class PatchEmbeddings(nn.Module):
    """Cut the image into non-overlapping patches and embed each one linearly (a strided convolution)."""

    def __init__(self, width: int, patch_size: int, num_channels: int = 3) -> None:
        super().__init__()
        self.projection = nn.Conv2d(num_channels, width, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, S, S) -> patch tokens (N, P, W), patches in row-major order."""
        grid = self.projection(images)  # (N, W, S/p, S/p)
        return rearrange(grid, "n w gh gw -> n (gh gw) w")  # (N, P, W)


class ViTEmbeddings(nn.Module):
    """Prepend the learned CLS token to the patch tokens and add learned absolute position embeddings."""

    def __init__(self, width: int, image_size: int, patch_size: int) -> None:
        super().__init__()
        num_patches = (image_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.patch_embeddings = PatchEmbeddings(width, patch_size)
        self.position_embeddings = nn.Parameter(torch.zeros(1, num_patches + 1, width))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, S, S) -> tokens (N, 1 + P, W)."""
        patches = self.patch_embeddings(images)  # (N, P, W)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)  # (N, 1, W)
        tokens = torch.cat([cls, patches], dim=1)  # (N, 1 + P, W)
        if tokens.shape[1] != self.position_embeddings.shape[1]:
            raise ValueError(f"the ViT was built for {self.position_embeddings.shape[1] - 1} patches, got "
                             f"{patches.shape[1]}: resize the images to the encoder's image_size first")
        return tokens + self.position_embeddings


class ViTSelfAttention(nn.Module):
    """Bidirectional multi-head attention over the tokens of one image, through SDPA."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (N, L, W) -> attended values (N, L, W) before the output projection."""
        q, k, v = (
            rearrange(proj(tokens), "n l (h d) -> n h l d", h=self.heads)  # (N, heads, L, W/heads)
            for proj in (self.query, self.key, self.value)
        )
        out = F.scaled_dot_product_attention(q, k, v)  # (N, heads, L, W/heads)
        return rearrange(out, "n h l d -> n l (h d)")  # (N, L, W)


class ViTSelfOutput(nn.Module):
    """The attention's output projection (its own module only to keep the Hugging Face key names)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, width)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.dense(hidden)


class ViTAttention(nn.Module):
    """Self-attention followed by its output projection."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attention = ViTSelfAttention(width, heads)
        self.output = ViTSelfOutput(width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.output(self.attention(tokens))


class ViTIntermediate(nn.Module):
    """First half of the MLP: expand to mlp_dim and apply the exact (erf) GELU, as Hugging Face's "gelu"."""

    def __init__(self, width: int, mlp_dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, mlp_dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(hidden))


class ViTOutput(nn.Module):
    """Second half of the MLP: project back to the width."""

    def __init__(self, width: int, mlp_dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(mlp_dim, width)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.dense(hidden)


class ViTLayer(nn.Module):
    """Pre-LayerNorm transformer layer: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, width: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.attention = ViTAttention(width, heads)
        self.intermediate = ViTIntermediate(width, mlp_dim)
        self.output = ViTOutput(width, mlp_dim)
        self.layernorm_before = nn.LayerNorm(width, eps=_LAYER_NORM_EPS)
        self.layernorm_after = nn.LayerNorm(width, eps=_LAYER_NORM_EPS)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (N, L, W) -> (N, L, W)."""
        tokens = tokens + self.attention(self.layernorm_before(tokens))
        return tokens + self.output(self.intermediate(self.layernorm_after(tokens)))


class ViTEncoder(nn.Module):
    """The stack of layers (attribute `layer`, as in Hugging Face ViT)."""

    def __init__(self, width: int, depth: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList([ViTLayer(width, heads, mlp_dim) for _ in range(depth)])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            tokens = layer(tokens)
        return tokens


class ViT(nn.Module):
    """A ViT with Hugging Face `ViTModel` architecture and names, without pooler; returns all tokens.

    forward(images (N, 3, S, S) normalised) -> last_hidden_state (N, 1 + P, W) after the final LayerNorm;
    token 0 is the CLS token, LeWM's frame embedding before the projector.
    """

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = ViTEmbeddings(cfg.width, cfg.image_size, cfg.patch_size)
        self.encoder = ViTEncoder(cfg.width, cfg.depth, cfg.heads, cfg.mlp_dim)
        self.layernorm = nn.LayerNorm(cfg.width, eps=_LAYER_NORM_EPS)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Hugging Face ViT's initialisation: truncated normal (std 0.02) weights, zero biases, unit norms."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                nn.init.trunc_normal_(module.weight, std=_INIT_STD)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.embeddings.cls_token, std=_INIT_STD)
        nn.init.trunc_normal_(self.embeddings.position_embeddings, std=_INIT_STD)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, S, S) -> last_hidden_state (N, 1 + P, W)."""
        images = images.to(self.embeddings.patch_embeddings.projection.weight.dtype)
        return self.layernorm(self.encoder(self.embeddings(images)))


def build_vit(cfg: EncoderConfig) -> ViT:
    """A freshly initialised ViT of the given sizes (no download), named like Hugging Face's ViTModel."""
    cfg.validate()
    return ViT(cfg)
