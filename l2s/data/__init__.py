"""Manifests, datasets, padding collation and length-bucketed batching for training."""
