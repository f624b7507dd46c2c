"""LeWM end to end: shapes, resizing, causality, rollout, NaN actions, checkpoint keys, sizes, gradients."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from lewm.config import ModelConfig, preset
from lewm.errors import LewmError
from lewm.model import LeWM

B, T = 2, 4  # tiny preset: history 3, so T = history + num_preds with num_preds 1
BLOCK = 10  # frameskip 5 x action_dim 2
D = 32


def pixels(b: int = B, t: int = T, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, 3, h, w), dtype=torch.uint8, generator=generator)


def actions(b: int = B, t: int = T, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, t, BLOCK, generator=torch.Generator().manual_seed(seed))


def test_missing_action_dim_is_a_user_error() -> None:
    cfg = preset("tiny").model
    assert cfg.action_dim is None
    with pytest.raises(LewmError, match="model.action_dim"):
        LeWM(cfg)


def test_shapes(model: LeWM) -> None:
    emb = model.encode(pixels())
    assert emb.shape == (B, T, D)
    act_emb = model.encode_actions(actions())
    assert act_emb.shape == (B, T, D)
    assert model.predict(emb[:, :3], act_emb[:, :3]).shape == (B, 3, D)
    assert model.frame_features(pixels()).shape == (B, T, 32)
    emb_all, pred = model(pixels(), actions())
    assert emb_all.shape == (B, T, D) and pred.shape == (B, 3, D)
    torch.testing.assert_close(emb_all, emb)
    assert model.rollout(emb[:, :3], actions(t=5)).shape == (B, 5, D)


def test_forward_predicts_from_the_first_history_frames(model: LeWM) -> None:
    px, act = pixels(), actions()
    emb, pred = model(px, act)
    torch.testing.assert_close(pred, model.predict(emb[:, :3], model.encode_actions(act[:, :3])))
    # Frame T-1 and block T-1 are only targets / unused: changing them leaves pred alone.
    px2, act2 = px.clone(), act.clone()
    px2[:, -1] = 255 - px2[:, -1]
    act2[:, -1] = float("nan")
    torch.testing.assert_close(model(px2, act2)[1], pred)


def test_other_image_sizes_are_resized(model: LeWM) -> None:
    emb = model.encode(pixels(h=48, w=40))
    assert emb.shape == (B, T, D) and torch.isfinite(emb).all()


def test_uint8_and_float_pixels_give_the_same_embedding(model: LeWM) -> None:
    px = pixels()
    torch.testing.assert_close(model.encode(px), model.encode(px.float() / 255.0), atol=1e-5, rtol=1e-5)


def test_predictions_are_causal(model: LeWM) -> None:
    px, act = pixels(), actions()
    _, base = model(px, act)
    for t in range(3):
        px2, act2 = px.clone(), act.clone()
        px2[:, t] = 255 - px2[:, t]
        act2[:, t] += 1.0
        _, pred = model(px2, act2)
        torch.testing.assert_close(pred[:, :t], base[:, :t])
        assert not torch.allclose(pred[:, t:], base[:, t:], atol=1e-4)


def test_actions_change_predictions_only_after_adaln_moves(
    cfg: ModelConfig, perturb: Callable[[torch.nn.Module], None]
) -> None:
    torch.manual_seed(0)
    fresh = LeWM(cfg).eval()
    emb = torch.randn(B, 3, D)
    a1, a2 = fresh.encode_actions(actions(t=3, seed=1)), fresh.encode_actions(actions(t=3, seed=2))
    torch.testing.assert_close(fresh.predict(emb, a1), fresh.predict(emb, a2))
    expected = fresh.pred_proj(fresh.predictor.transformer.norm(emb + fresh.predictor.pos_embedding))
    torch.testing.assert_close(fresh.predict(emb, a1), expected)
    perturb(fresh)
    assert not torch.allclose(fresh.predict(emb, a1), fresh.predict(emb, a2), atol=1e-4)


def manual_rollout(model: LeWM, emb: torch.Tensor, blocks: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
    """The rollout written out naively: re-encode the actions every step, keep the last prediction."""
    embs, all_blocks, preds = emb, torch.cat([past, blocks], dim=1), []
    for _ in range(blocks.shape[1]):
        n = embs.shape[1]
        lo = max(0, n - model.history)
        pred = model.predict(embs[:, lo:], model.encode_actions(all_blocks[:, lo:n]))[:, -1:]
        preds.append(pred)
        embs = torch.cat([embs, pred], dim=1)
    return torch.cat(preds, dim=1)


@pytest.mark.parametrize("observed", [1, 2, 3, 5])
def test_rollout_equals_a_manual_loop(model: LeWM, observed: int) -> None:
    emb = model.encode(pixels(t=observed))
    blocks, past = actions(t=6, seed=3), actions(t=observed - 1, seed=4)
    with torch.no_grad():
        got = model.rollout(emb, blocks, past)
        expected = manual_rollout(model, emb, blocks, past)
    assert got.shape == (B, 6, D)
    torch.testing.assert_close(got, expected)


def test_rollout_one_step_is_predict_last_position(model: LeWM) -> None:
    emb = model.encode(pixels(t=3))
    blocks, past = actions(t=1, seed=5), actions(t=2, seed=6)
    got = model.rollout(emb, blocks, past)
    expected = model.predict(emb, model.encode_actions(torch.cat([past, blocks], dim=1)))[:, -1:]
    torch.testing.assert_close(got, expected)


def test_rollout_default_past_actions_are_zeros(model: LeWM) -> None:
    emb = model.encode(pixels(t=2))
    blocks = actions(t=3)
    explicit = model.rollout(emb, blocks, torch.zeros(B, 1, BLOCK))
    torch.testing.assert_close(model.rollout(emb, blocks), explicit)
    with pytest.raises(ValueError, match="h - 1"):
        model.rollout(emb, blocks, torch.zeros(B, 2, BLOCK))


def test_nan_actions_give_finite_outputs(model: LeWM) -> None:
    act = actions()
    act[0, 1] = float("nan")
    act[:, -1] = float("nan")
    emb, pred = model(pixels(), act)
    assert torch.isfinite(emb).all() and torch.isfinite(pred).all()
    blocks = actions(t=3)
    blocks[1, 0, 3] = float("nan")
    assert torch.isfinite(model.rollout(emb[:, :2], blocks)).all()


def test_wrong_action_block_size_names_the_fields(model: LeWM) -> None:
    with pytest.raises(LewmError, match="model.frameskip"):
        model.encode_actions(torch.zeros(B, T, 4))


REFERENCE_KEYS = [
    "encoder.embeddings.cls_token",
    "encoder.embeddings.position_embeddings",
    "encoder.embeddings.patch_embeddings.projection.weight",
    "encoder.encoder.layer.11.attention.attention.query.weight",
    "encoder.encoder.layer.0.attention.attention.key.weight",
    "encoder.encoder.layer.0.attention.attention.value.bias",
    "encoder.encoder.layer.0.attention.output.dense.weight",
    "encoder.encoder.layer.0.intermediate.dense.weight",
    "encoder.encoder.layer.0.output.dense.weight",
    "encoder.encoder.layer.0.layernorm_before.weight",
    "encoder.encoder.layer.0.layernorm_after.weight",
    "encoder.layernorm.weight",
    "predictor.pos_embedding",
    "predictor.transformer.layers.5.adaLN_modulation.1.weight",
    "predictor.transformer.layers.0.attn.norm.weight",
    "predictor.transformer.layers.0.attn.to_qkv.weight",
    "predictor.transformer.layers.0.attn.to_out.0.weight",
    "predictor.transformer.layers.0.mlp.net.0.weight",
    "predictor.transformer.layers.0.mlp.net.1.weight",
    "predictor.transformer.layers.0.mlp.net.4.weight",
    "predictor.transformer.norm.weight",
    "action_encoder.patch_embed.weight",
    "action_encoder.embed.0.weight",
    "action_encoder.embed.2.weight",
    "projector.net.0.weight",
    "projector.net.1.running_mean",
    "projector.net.3.weight",
    "pred_proj.net.0.weight",
    "pred_proj.net.1.running_var",
    "pred_proj.net.3.weight",
]


@pytest.fixture(scope="module")
def paper_model() -> LeWM:
    cfg = preset("paper").model
    cfg.action_dim = 2
    return LeWM(cfg)


def test_paper_state_dict_has_reference_keys(paper_model: LeWM) -> None:
    state = paper_model.state_dict()
    missing = [key for key in REFERENCE_KEYS if key not in state]
    assert not missing, missing
    prefixes = ("encoder.", "projector.", "action_encoder.", "predictor.", "pred_proj.")
    assert all(key.startswith(prefixes) for key in state), [k for k in state if not k.startswith(prefixes)]
    assert "encoder.encoder.layer.12.attention.attention.query.weight" not in state
    assert "predictor.transformer.layers.6.attn.norm.weight" not in state
    assert state["predictor.pos_embedding"].shape == (1, 3, 192)
    assert state["action_encoder.patch_embed.weight"].shape == (10, 10)
    assert state["encoder.embeddings.position_embeddings"].shape == (1, 257, 192)


def test_paper_parameter_counts(paper_model: LeWM) -> None:
    counts = paper_model.parameter_counts()
    print({name: f"{count / 1e6:.3f}M" for name, count in counts.items()})
    assert 5.0e6 < counts["encoder"] < 6.0e6
    assert 9.0e6 < counts["predictor"] < 12.0e6
    assert counts["total"] == sum(counts[name] for name in counts if name != "total")
    assert 16e6 < counts["total"] < 20e6


def test_state_dict_round_trip(model: LeWM, cfg: ModelConfig) -> None:
    other = LeWM(cfg).eval()
    other.load_state_dict(model.state_dict(), strict=True)
    px, act = pixels(), actions()
    for a, b in zip(model(px, act), other(px, act), strict=True):
        torch.testing.assert_close(a, b)


def test_gradients_reach_every_component(cfg: ModelConfig) -> None:
    torch.manual_seed(0)
    model = LeWM(cfg).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)

    def loss_and_grads(target_only: bool = False) -> dict[str, float]:
        optimiser.zero_grad()
        emb, pred = model(pixels(), actions())
        target = emb[:, 1:]
        loss = F.mse_loss(pred.detach() if target_only else pred, target)
        loss.backward()
        return {
            name: sum(p.grad.norm().item() for p in getattr(model, name).parameters() if p.grad is not None)
            for name in ("encoder", "projector", "action_encoder", "predictor", "pred_proj")
        }

    first = loss_and_grads()
    # AdaLN-zero: at init the action path has exactly zero gradient except the modulation layers themselves.
    assert first["action_encoder"] == 0.0
    assert all(first[name] > 0 for name in ("encoder", "projector", "predictor", "pred_proj"))
    optimiser.step()
    second = loss_and_grads()
    assert all(value > 0 for value in second.values()), second
    # The targets carry gradient too: no stop-gradient inside encode.
    target_side = loss_and_grads(target_only=True)
    assert target_side["encoder"] > 0 and target_side["projector"] > 0
    assert all(p.grad is not None for p in model.encoder.parameters())
