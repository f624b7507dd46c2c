"""Training objectives; each returns its loss as named terms (`loss` plus every component)."""

from lewm.objectives.lewm_objective import LeWMObjective
from lewm.objectives.sigreg import SIGReg, random_directions

__all__ = ["LeWMObjective", "SIGReg", "random_directions"]
