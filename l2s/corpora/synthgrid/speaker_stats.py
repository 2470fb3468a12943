"""How distinct the corpus voices are: Resemblyzer (GE2E) cosines within and between speakers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np

from l2s.errors import InputError


@dataclass(frozen=True)
class SpeakerStats:
    """Speaker-encoder cosines over a corpus.

    Attributes:
        speakers: speakers scored.
        clips_per_speaker: clips embedded per speaker.
        within_mean, within_std: cosine of two clips of one speaker.
        between_mean, between_std: cosine of two clips of different speakers.
        nearest_centroid_accuracy: leave-one-out speaker identification by the nearest speaker centroid.
        chance: 1 / speakers.
    """

    speakers: int
    clips_per_speaker: int
    within_mean: float
    within_std: float
    between_mean: float
    between_std: float
    nearest_centroid_accuracy: float
    chance: float


def speaker_stats(root: Path, clips_per_speaker: int = 4) -> SpeakerStats:
    """Embed the first ``clips_per_speaker`` clips of every speaker (all splits) and compare them."""
    from l2s.corpora.synthgrid.generate import read_manifest
    from l2s.io.audio import read_audio
    from l2s.metrics.speaker import speaker_embedding

    root = Path(root)
    by_speaker: Dict[str, List[Path]] = {}
    for manifest in sorted(root.glob("*.jsonl")):
        for row in read_manifest(manifest):
            by_speaker.setdefault(row["speaker"], []).append(root / row["wav"])
    by_speaker = {k: v[:clips_per_speaker] for k, v in sorted(by_speaker.items()) if len(v) >= 2}
    if len(by_speaker) < 2:
        raise InputError(f"{root}: need at least two speakers with two clips each")
    ids = list(by_speaker)
    emb = {s: np.stack([speaker_embedding(read_audio(p)) for p in paths]) for s, paths in by_speaker.items()}
    within, between = [], []
    for n, a in enumerate(ids):
        sim = emb[a] @ emb[a].T
        within.extend(sim[np.triu_indices(len(sim), 1)])
        for b in ids[n + 1:]:
            between.extend((emb[a] @ emb[b].T).ravel())
    hits = total = 0
    for s in ids:
        for i in range(len(emb[s])):
            centroids = {t: (np.delete(emb[t], i, 0) if t == s else emb[t]).mean(0) for t in ids}
            guess = max(ids, key=lambda t: float(emb[s][i] @ centroids[t]) / np.linalg.norm(centroids[t]))
            hits += guess == s
            total += 1
    return SpeakerStats(
        speakers=len(ids), clips_per_speaker=clips_per_speaker,
        within_mean=float(np.mean(within)), within_std=float(np.std(within)),
        between_mean=float(np.mean(between)), between_std=float(np.std(between)),
        nearest_centroid_accuracy=hits / total, chance=1.0 / len(ids),
    )
