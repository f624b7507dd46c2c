"""Science tools: collapse diagnostics and probing (surprise and straightness follow)."""
