"""Planning in latent space: CEM (more solvers can sit beside it), its costs and rollout adapters."""

from lewm.planning.cem import CEMConfig, CEMPlanner, PlainRollout, PlanResult, final_embedding_cost

__all__ = ["CEMConfig", "CEMPlanner", "PlainRollout", "PlanResult", "final_embedding_cost"]
