"""Hold lewm against the official LeWM code (stable-worldmodel 0.1.1) and report the largest differences.

    python scripts/official_parity.py [--json docs/official_parity.json] [--seeds 2]

For each configuration (the released Push-T config.json, and a ViT-Small one), history 1 and 3, and frames at the
model's size and at another shape, both models hold the same random weights; the script prints, per quantity
(embedding, one predictor pass, multi-step rollout, planning cost), the largest max |ours - official| /
(1 + |official|) over seeds, then SIGReg against the official SIGReg and an import -> export round trip. Needs
`pip install --no-deps stable-worldmodel==0.1.1` and transformers. The comparison lives in
tests/official/official_code.py, shared with tests/official/test_official_parity.py.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import platform
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parents[1]
CASES = (("paper", (224, 224)), ("paper", (96, 128)), ("small-vit", (32, 32)), ("small-vit", (40, 56)))


def load_helper() -> ModuleType:
    """tests/official/official_code.py as a module (the tests folder is not a package)."""
    spec = importlib.util.spec_from_file_location("lewm_tests_official_code",
                                                  ROOT / "tests" / "official" / "official_code.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_differences(helper: ModuleType, seeds: int) -> list[dict]:
    configs = {"paper": helper.PUSHT_CONFIG, "small-vit": helper.SMALL_VIT_CONFIG}
    rows = []
    for (name, frame_size) in CASES:
        for history in (1, 3):
            config = copy.deepcopy(configs[name])
            config["predictor"]["num_frames"] = history
            worst: dict[str, float] = {}
            for seed in range(seeds):
                for key, value in helper.compare_with_official(config, frame_size, seed=seed).items():
                    worst[key] = max(worst.get(key, 0.0), value)
            rows.append({"config": name, "history": history, "frames": list(frame_size), **worst})
            print(f"{name:<9} history {history} frames {frame_size[0]:>3}x{frame_size[1]:<3}  " +
                  "  ".join(f"{key} {worst[key]:.1e}" for key in ("embedding", "predict", "rollout", "cost")))
    return rows


def sigreg_difference(helper: ModuleType) -> float:
    from lewm.objectives import SIGReg

    embeddings = torch.randn(3, 128, 192, generator=torch.Generator().manual_seed(0)) * 1.5 + 0.3
    ours = SIGReg(num_projections=1024, num_knots=17)(embeddings, seed=5)
    torch.manual_seed(5)
    reference = helper.official_sigreg()(embeddings)
    return abs(ours.item() - reference.item()) / abs(reference.item())


def round_trip_difference(helper: ModuleType) -> float:
    """Largest |exported - original| over all tensors after official folder -> lewm import -> lewm export."""
    from lewm.official import export_official, import_official, to_transformers4_names

    with tempfile.TemporaryDirectory() as tmp:
        folder, run, out = Path(tmp) / "official", Path(tmp) / "run", Path(tmp) / "exported"
        folder.mkdir()
        model = helper.randomise(helper.build_official(helper.PUSHT_CONFIG), 0)
        torch.save(to_transformers4_names(model.state_dict()), folder / "weights.pt")
        (folder / "config.json").write_text(json.dumps(helper.PUSHT_CONFIG))
        import_official(folder, run, frameskip=5)
        export_official(run, out)
        before, after = torch.load(folder / "weights.pt"), torch.load(out / "weights.pt")
        if set(before) != set(after):
            return float("inf")
        return max(float((before[k].double() - after[k].double()).abs().max()) for k in before)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "official_parity.json")
    args = parser.parse_args(argv)
    helper = load_helper()
    try:
        helper.official_modules()
    except ImportError as error:
        print(f"official_parity: official code unavailable: {error}", file=sys.stderr)
        return 1
    import transformers

    rows = model_differences(helper, args.seeds)
    sigreg, round_trip = sigreg_difference(helper), round_trip_difference(helper)
    print(f"SIGReg relative difference {sigreg:.1e}; import -> export round trip largest tensor difference "
          f"{round_trip:.1e}")
    report = {"official": "stable-worldmodel 0.1.1 wm/lewm + wm/loss.py", "transformers": transformers.__version__,
              "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
              "seeds": args.seeds, "metric": "max |ours - official| / (1 + |official|)", "models": rows,
              "sigreg_relative_difference": sigreg, "round_trip_max_difference": round_trip,
              "command": "python scripts/official_parity.py"}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
