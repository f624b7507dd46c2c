"""Planning in latent space: CEM (more solvers can sit beside it), its costs and rollout adapters, and the
whole plan recorded as one CUDA graph."""

from lewm.planning.cem import ActionBounds, CEMConfig, CEMPlanner, PlainRollout, PlanResult, final_embedding_cost
from lewm.planning.graphed import GraphedPlanner

__all__ = [
    "ActionBounds", "CEMConfig", "CEMPlanner", "GraphedPlanner", "PlainRollout", "PlanResult", "final_embedding_cost",
]
