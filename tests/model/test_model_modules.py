"""Projector, action encoder and predictor: shapes, NaN handling, AdaLN-zero identity, causality."""

from __future__ import annotations

import pytest
import torch

from lewm.errors import LewmError
from lewm.model import ActionEncoder, MLPProjector, Predictor
from lewm.model.modules import modulate


def test_projector_keys_and_shapes() -> None:
    torch.manual_seed(0)
    projector = MLPProjector(16, 64, 8)
    assert {key.rsplit(".", 1)[0] for key in projector.state_dict()} == {"net.0", "net.1", "net.3"}
    x = torch.randn(4, 5, 16)
    projector.train()
    assert projector(x).shape == (4, 5, 8)
    assert projector(x[:, 0]).shape == (4, 8)
    projector.eval()
    # (B, T, D) is the same as flattening B*T: each row independent in eval mode.
    torch.testing.assert_close(projector(x), projector(x.reshape(20, 16)).reshape(4, 5, 8))


def test_projector_batchnorm_pools_over_batch_and_time() -> None:
    torch.manual_seed(0)
    projector = MLPProjector(4, 8, 4).train()
    x = torch.randn(3, 7, 4)
    projector(x)
    torch.testing.assert_close(projector.net[1].running_mean,
                               0.1 * projector.net[0](x.reshape(21, 4)).mean(0).detach())


def test_action_encoder_keys_shapes_and_nan() -> None:
    torch.manual_seed(0)
    encoder = ActionEncoder(block_dim=10, patch=10, hidden=32, out_dim=16)
    assert {key.rsplit(".", 1)[0] for key in encoder.state_dict()} == {"patch_embed", "embed.0", "embed.2"}
    actions = torch.randn(2, 4, 10)
    assert encoder(actions).shape == (2, 4, 16)
    with_nan = actions.clone()
    with_nan[:, -1] = float("nan")
    zeros = actions.clone()
    zeros[:, -1] = 0.0
    out = encoder(with_nan)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, encoder(zeros))
    # float64 actions (straight from numpy) are accepted.
    torch.testing.assert_close(encoder(actions.double()), encoder(actions))


def test_action_encoder_rejects_wrong_block_size() -> None:
    with pytest.raises(LewmError, match="frameskip"):
        ActionEncoder(10, 10, 32, 16)(torch.zeros(2, 3, 4))


def test_action_encoder_loads_reference_conv1d_weight() -> None:
    torch.manual_seed(0)
    source = ActionEncoder(10, 6, 32, 16)
    target = ActionEncoder(10, 6, 32, 16)
    state = source.state_dict()
    state["patch_embed.weight"] = state["patch_embed.weight"].unsqueeze(-1)  # (6, 10, 1) like a Conv1d
    target.load_state_dict(state, strict=True)
    actions = torch.randn(2, 3, 10)
    torch.testing.assert_close(target(actions), source(actions))


def make_predictor(dropout: float = 0.0) -> Predictor:
    torch.manual_seed(0)
    return Predictor(dim=16, depth=2, heads=2, head_dim=8, mlp_dim=32, dropout=dropout, max_frames=4)


def test_predictor_keys() -> None:
    keys = set(make_predictor().state_dict())
    for key in (
        "pos_embedding",
        "transformer.layers.1.adaLN_modulation.1.weight",
        "transformer.layers.0.attn.norm.weight",
        "transformer.layers.0.attn.to_qkv.weight",
        "transformer.layers.0.attn.to_out.0.weight",
        "transformer.layers.0.mlp.net.0.weight",
        "transformer.layers.0.mlp.net.1.weight",
        "transformer.layers.0.mlp.net.4.weight",
        "transformer.norm.weight",
    ):
        assert key in keys, key
    assert "transformer.layers.0.attn.to_qkv.bias" not in keys
    assert make_predictor().pos_embedding.shape == (1, 4, 16)


@pytest.mark.parametrize("train", [False, True])
def test_fresh_predictor_is_identity_up_to_final_norm(train: bool) -> None:
    predictor = make_predictor(dropout=0.1).train(train)
    x, c = torch.randn(3, 4, 16), torch.randn(3, 4, 16)
    expected = predictor.transformer.norm(x + predictor.pos_embedding)
    torch.testing.assert_close(predictor(x, c), expected)
    torch.testing.assert_close(predictor(x[:, :2], c[:, :2]), expected[:, :2])


def test_perturbed_adaln_makes_actions_matter() -> None:
    predictor = make_predictor().eval()
    with torch.no_grad():
        for block in predictor.transformer.layers:
            block.adaLN_modulation[1].weight.normal_(std=0.1)
    x, c = torch.randn(3, 4, 16), torch.randn(3, 4, 16)
    assert not torch.allclose(predictor(x, c), predictor(x, torch.randn(3, 4, 16)), atol=1e-4)


def test_predictor_is_causal() -> None:
    predictor = make_predictor().eval()
    with torch.no_grad():
        for block in predictor.transformer.layers:
            block.adaLN_modulation[1].weight.normal_(std=0.1)
            block.adaLN_modulation[1].bias.normal_(std=0.1)
    x, c = torch.randn(2, 4, 16), torch.randn(2, 4, 16)
    base = predictor(x, c)
    for t in range(4):
        x2, c2 = x.clone(), c.clone()
        x2[:, t] += 1.0
        c2[:, t] -= 1.0
        out = predictor(x2, c2)
        torch.testing.assert_close(out[:, :t], base[:, :t])
        assert not torch.allclose(out[:, t:], base[:, t:], atol=1e-4)


def test_predictor_rejects_too_many_frames() -> None:
    with pytest.raises(ValueError, match="at most 4"):
        make_predictor()(torch.zeros(1, 5, 16), torch.zeros(1, 5, 16))


def test_predictor_attention_dropout_only_in_training() -> None:
    predictor = make_predictor(dropout=0.5)
    with torch.no_grad():
        for block in predictor.transformer.layers:
            block.adaLN_modulation[1].bias.normal_(std=1.0)
    x, c = torch.randn(2, 4, 16), torch.randn(2, 4, 16)
    predictor.eval()
    torch.testing.assert_close(predictor(x, c), predictor(x, c))
    predictor.train()
    assert not torch.allclose(predictor(x, c), predictor(x, c))


def test_modulate_identity_at_zero() -> None:
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(modulate(x, torch.zeros(4), torch.zeros(4)), x)
    torch.testing.assert_close(modulate(x, torch.ones(4), torch.ones(4)), 2 * x + 1)
