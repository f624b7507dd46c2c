"""Orchestrators that run the lower parts end to end: the demo (collect -> train -> evaluate), lambda search
(trainings scored by probes or planning) and the report (every analysis of several runs side by side)."""
