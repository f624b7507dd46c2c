"""The frame encoder: a ViT trained from scratch whose CLS token (after the final LayerNorm) embeds a frame.

The ViT is our own small module rather than `transformers.ViTModel`, but it has the same architecture, the
same initialisation and the Hugging Face ViT parameter names that the released LeWM checkpoints use
(`embeddings.cls_token`, `encoder.layer.{i}.attention.attention.query.weight`, `layernorm.weight`, ...).
transformers 5 renamed the ViT internals (`layers.{i}.attention.q_proj`, `mlp.fc1`, ...), so building on
`ViTModel` would tie our checkpoint keys to the installed transformers version; this module keeps them fixed
for every version. `tests/model` checks that its outputs equal `transformers.ViTModel`'s for the same weights.

Pixels stay uint8 until `preprocess_pixels` (run on whatever device the pixels are on): divide by 255,
resize so that the shorter side equals the encoder's image size (keeping the aspect ratio, as the reference's
torchvision `Resize(image_size)` does), normalise with the ImageNet mean and std. A square frame thus becomes
S x S; a non-square one stays non-square, and the ViT then interpolates its position embeddings to the frame's
patch grid, as `transformers.ViTModel(..., interpolate_pos_encoding=True)` does in the reference.
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


def resized_size(height: int, width: int, image_size: int) -> tuple[int, int]:
    """The (height, width) a frame is resized to: shorter side `image_size`, aspect ratio kept.

    The longer side is truncated, int(image_size * long / short), the rule of torchvision's `Resize` with an
    int size that the reference LeWM preprocessing uses, so our frames have exactly the reference's size.
    """
    short, long = min(height, width), max(height, width)
    new_long = int(image_size * long / short)
    return (image_size, new_long) if height <= width else (new_long, image_size)


def preprocess_pixels(
    pixels: torch.Tensor,
    image_size: int,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
) -> torch.Tensor:
    """Turn stored frames into the ViT's input: float, shorter side resized to `image_size`, normalised.

    pixels: (..., 3, H, W), uint8 in [0, 255] or floating point in [0, 1]. Returns float32 (..., 3, H', W')
    on the same device, with (H', W') = `resized_size(H, W, image_size)`: S x S for a square frame
    (S = image_size), and for a non-square one the shorter side S and the aspect ratio kept, as the reference's
    torchvision `Resize(S)`. Resizing is bilinear with antialiasing (skipped when the size already matches),
    so datasets rendered at any resolution can feed any encoder. The reference normalises before resizing; we
    resize first (fewer pixels to normalise when shrinking), which is the same map up to float rounding since
    every output pixel is a weighted average with weights summing to one.
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
    size = resized_size(height, width, image_size)
    if size != (height, width):
        flat, packed_shape = pack([images], "* c h w")  # (N, 3, H, W), N = product of the leading dims
        flat = F.interpolate(flat, size=size, mode="bilinear", align_corners=False, antialias=True)  # (N, 3, H', W')
        (images,) = unpack(flat, packed_shape, "* c h w")  # (..., 3, H', W')
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
        """pixels (..., 3, H, W) uint8 or float in [0, 1] -> (..., 3, H', W') normalised float32 (see above)."""
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
        """images (N, 3, Hi, Wi) -> patch tokens (N, P, W), P = Gh * Gw, patches in row-major order.

        The stride-p convolution drops the last Hi % p rows and Wi % p columns (Gh = Hi // p, Gw = Wi // p).
        """
        grid = self.projection(images)  # (N, W, Gh, Gw)
        return rearrange(grid, "n w gh gw -> n (gh gw) w")  # (N, P, W)


class ViTEmbeddings(nn.Module):
    """Prepend the learned CLS token to the patch tokens and add learned absolute position embeddings.

    The table is learned for the built image_size (a G x G grid, G = image_size // patch_size). Other frame
    sizes get it resized to their grid, exactly as Hugging Face ViT with `interpolate_pos_encoding=True`, which
    the reference encoder uses, so a checkpoint sees the same position embeddings here as there.
    """

    def __init__(self, width: int, image_size: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.grid = image_size // patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.patch_embeddings = PatchEmbeddings(width, patch_size)
        self.position_embeddings = nn.Parameter(torch.zeros(1, self.grid**2 + 1, width))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, Hi, Wi) -> tokens (N, 1 + P, W), P = (Hi // p) * (Wi // p)."""
        height, width = images.shape[-2:]
        patches = self.patch_embeddings(images)  # (N, P, W)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)  # (N, 1, W)
        tokens = torch.cat([cls, patches], dim=1)  # (N, 1 + P, W)
        return tokens + self.positions(height, width)

    def positions(self, height: int, width: int) -> torch.Tensor:
        """Position embeddings (1, 1 + Gh * Gw, W) for a height x width image, Gh = height // p, Gw = width // p.

        Hugging Face's rule, kept exactly so that outputs match it: the learned table as is when the image has
        as many patches as the table and is square (so the fast path only compares Python ints: no host sync,
        nothing new under CUDA graphs); otherwise the patch rows, laid out on their G x G grid, are resized to
        Gh x Gw with bicubic interpolation (align_corners=False) and the CLS row is kept.
        """
        rows, cols = height // self.patch_size, width // self.patch_size
        if rows * cols == self.grid**2 and height == width:
            return self.position_embeddings  # (1, 1 + G*G, W)
        cls_position, patch_positions = self.position_embeddings[:, :1], self.position_embeddings[:, 1:]
        grid = rearrange(patch_positions, "b (gh gw) w -> b w gh gw", gh=self.grid)  # (1, W, G, G)
        grid = F.interpolate(grid, size=(rows, cols), mode="bicubic", align_corners=False)  # (1, W, Gh, Gw)
        patch_positions = rearrange(grid, "b w gh gw -> b (gh gw) w")  # (1, Gh*Gw, W)
        return torch.cat([cls_position, patch_positions], dim=1)  # (1, 1 + Gh*Gw, W)


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

    forward(images (N, 3, Hi, Wi) normalised) -> last_hidden_state (N, 1 + P, W) after the final LayerNorm,
    P = (Hi // p) * (Wi // p): (S / p)^2 at the built size S, otherwise with interpolated position embeddings
    (`ViTEmbeddings.positions`). Token 0 is the CLS token, LeWM's frame embedding before the projector.
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
        """images (N, 3, Hi, Wi) -> last_hidden_state (N, 1 + P, W)."""
        images = images.to(self.embeddings.patch_embeddings.projection.weight.dtype)
        return self.layernorm(self.encoder(self.embeddings(images)))


def build_vit(cfg: EncoderConfig) -> ViT:
    """A freshly initialised ViT of the given sizes (no download), named like Hugging Face's ViTModel."""
    cfg.validate()
    return ViT(cfg)
