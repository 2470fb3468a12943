"""Corpora: generators and preparers that write clips plus JSONL manifests.

``synthgrid`` generates the synthetic GRID-like audio-visual corpus offline.
"""
