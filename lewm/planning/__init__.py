"""Planning in latent space: CEM (more solvers can sit beside it) and its costs."""

from lewm.planning.cem import CEMConfig, CEMPlanner, PlanResult, final_embedding_cost

__all__ = ["CEMConfig", "CEMPlanner", "PlanResult", "final_embedding_cost"]
