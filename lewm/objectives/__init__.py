"""Training objectives; each returns its loss as named terms (`loss` plus every component).

Both are called as `objective(emb, pred, seed=..., actions=...)`: LeWM (prediction + lambda * SIGReg) and the
PLDM baseline (prediction + six VICReg-style terms).
"""

from lewm.objectives.lewm_objective import LeWMObjective
from lewm.objectives.pldm_objective import PLDMObjective
from lewm.objectives.sigreg import SIGReg, random_directions

__all__ = ["LeWMObjective", "PLDMObjective", "SIGReg", "random_directions"]
