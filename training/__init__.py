"""Offline training tools: outcome records from both tiers, and the quality estimator fitted on them.

Run by `costmesh router label` / `costmesh router train`; no service imports this package."""
