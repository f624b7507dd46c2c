"""`python -m lewm.train ...`: the same as `lewm train ...`, and what `torchrun` launches:

    torchrun --nproc-per-node 4 -m lewm.train --data FILE.h5 --out RUN_DIR --preset paper
"""

import sys

from lewm.cli.main import run

if __name__ == "__main__":
    sys.exit(run(["train", *sys.argv[1:]]))
