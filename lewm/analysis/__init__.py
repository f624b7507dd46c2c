"""Science tools: collapse diagnostics (probing, surprise and straightness follow)."""
