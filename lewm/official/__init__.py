"""Official LeWM checkpoints (the authors' `weights.pt` + `config.json`, on the hub or on disk) in and out of lewm.

`import_official` turns one into a lewm run directory; `export_official` writes a run back in the released
format, which the official code loads with strict=True. `tests/official` holds both against the official model
code itself (stable-worldmodel 0.1.1).
"""

from lewm.official.config import VIT_SIZES, read_official_config, write_official_config
from lewm.official.convert import (
    ImportReport,
    export_official,
    import_official,
    load_official_weights,
    official_action_stats,
    official_state_dict,
    split_action_block,
)
from lewm.official.folder import OfficialFolder, parse_hub_id, read_folder, resolve
from lewm.official.keys import to_transformers4_names, to_transformers5_names, uses_transformers5_names

__all__ = [
    "VIT_SIZES",
    "ImportReport",
    "OfficialFolder",
    "export_official",
    "import_official",
    "load_official_weights",
    "official_action_stats",
    "official_state_dict",
    "parse_hub_id",
    "read_folder",
    "read_official_config",
    "resolve",
    "split_action_block",
    "to_transformers4_names",
    "to_transformers5_names",
    "uses_transformers5_names",
    "write_official_config",
]
