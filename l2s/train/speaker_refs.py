"""Reference-recording speaker embeddings for training a speaker-conditioned model.

At inference a speaker embedding comes from a *reference recording* (``--ref-audio``): another utterance of the
same voice, never the one being generated. Training mirrors that: every utterance is paired with a different
utterance of the same speaker (the manifests' ``speaker`` field), drawn at random in training and fixed (the
next one in sorted order) in evaluation, so that the embedding carries the speaker's voice (its pitch level,
its timbre) but not the utterance's own prosody. An utterance whose speaker has no other utterance, or no
speaker label, is its own reference.

Embeddings are Resemblyzer's (the same function as ``--ref-audio``, :func:`l2s.pipeline.inputs.speaker_embedding`),
computed once per recording and kept in RAM (256 floats each); so are the references' pitch levels (mean voiced
log-F0, :func:`l2s.features.pitch.log_f0_level`, as ``--ref-audio`` computes it too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from l2s.data.manifest import read_manifest
from l2s.errors import InputError

Embedder = Callable[[Path], torch.Tensor]
Leveller = Callable[[Path], Optional[float]]


def resemblyzer_embedding(wav_path: Path) -> torch.Tensor:
    """``(256,)`` Resemblyzer embedding of a recording, as ``--ref-audio`` computes it."""
    from l2s.pipeline.inputs import speaker_embedding

    return speaker_embedding(wav_path)[0]


def recording_log_f0_level(wav_path: Path) -> Optional[float]:
    """Mean voiced log-F0 of a recording, as ``--ref-audio`` computes it."""
    from l2s.pipeline.inputs import reference_log_f0

    return reference_log_f0(wav_path)


class SpeakerReferences:
    """Speaker embeddings of reference recordings, per utterance id.

    Args:
        manifests: manifests whose utterances may be asked for (and serve as each other's references).
        embed: recording path -> ``(E,)`` embedding (Resemblyzer by default; tests pass a cheap one).
        level: recording path -> mean voiced log-F0, or None (WORLD by default).
    """

    def __init__(self, manifests: Sequence[Union[str, Path]], embed: Embedder = resemblyzer_embedding,
                 level: Leveller = recording_log_f0_level):
        self._embed, self._level = embed, level
        self._wav: Dict[str, Path] = {}
        self._speaker: Dict[str, str] = {}
        for manifest in manifests:
            for utt in read_manifest(manifest):
                if utt.wav is None:
                    raise InputError(f"{manifest}: utterance {utt.id} has no wav; speaker references need the "
                                     "recordings")
                self._wav[utt.id], self._speaker[utt.id] = utt.wav, utt.speaker
        self._by_speaker: Dict[str, List[str]] = {}
        for utt_id in sorted(self._wav):
            if self._speaker[utt_id]:
                self._by_speaker.setdefault(self._speaker[utt_id], []).append(utt_id)
        self._cache: Dict[str, torch.Tensor] = {}
        self._levels: Dict[str, float] = {}

    def reference_id(self, utt_id: str, generator: Optional[torch.Generator] = None) -> str:
        """The utterance whose recording stands as ``utt_id``'s reference (random with a generator)."""
        if utt_id not in self._wav:
            raise InputError(f"no manifest given to the speaker references holds utterance {utt_id!r}")
        same = self._by_speaker.get(self._speaker[utt_id], [utt_id])
        others = [u for u in same if u != utt_id]
        if not others:
            return utt_id
        if generator is None:
            return others[same.index(utt_id) % len(others)]  # the next one, cyclically
        return others[int(torch.randint(len(others), (1,), generator=generator))]

    def embedding(self, utt_id: str) -> torch.Tensor:
        """``(E,)`` embedding of ``utt_id``'s own recording (cached)."""
        if utt_id not in self._cache:
            self._cache[utt_id] = torch.as_tensor(np.asarray(self._embed(self._wav[utt_id]), dtype=np.float32))
        return self._cache[utt_id]

    def batch(self, ids: Sequence[str], generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``(B, E)`` reference embeddings for a batch of utterance ids."""
        return torch.stack([self.embedding(self.reference_id(i, generator)) for i in ids])

    def log_f0_level(self, utt_id: str) -> float:
        """Mean voiced log-F0 of ``utt_id``'s own recording (NaN if nothing is voiced; cached)."""
        if utt_id not in self._levels:
            level = self._level(self._wav[utt_id])
            self._levels[utt_id] = float("nan") if level is None else float(level)
        return self._levels[utt_id]

    def batch_levels(self, ids: Sequence[str], generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``(B,)`` pitch levels of the batch's reference recordings (the same references as :meth:`batch`)."""
        return torch.tensor([self.log_f0_level(self.reference_id(i, generator)) for i in ids])
