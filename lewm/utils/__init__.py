"""Small shared helpers (atomic file writes, seeding) used by several parts."""
