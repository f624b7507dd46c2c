"""Open-loop prediction error of a trained run over H blocks, against shuffled actions and a copy of the last
embedding (lewm.analysis.open_loop explains the measurement).

    python scripts/open_loop_error.py --run runs/demo-pusht/run [--blocks 5] [--clips 256] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lewm.analysis.open_loop import open_loop_errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = open_loop_errors(args.run, args.blocks, args.clips)
    print(f"latent squared error per predicted block ({result['clips']} held-out clips, step {result['step']})")
    for name, values in result["errors"].items():
        print(f"  {name:17s} " + "  ".join(f"{v:7.2f}" for v in values))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
