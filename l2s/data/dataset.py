"""A map-style dataset over a manifest, loading only the fields a stage needs.

Fields: ``roi`` ((T, 96, 96) uint8 mouth crops from the utterance's ``roi`` file,
computed by ``l2s prepare`` / the corpus generator), ``wav`` ((N,) float32 16 kHz),
``mel`` ((T_m, 80) model-space mel, time first so it pads like the others),
``f0`` ((T_m,) Hz, 0 unvoiced; both read from the manifest's ``mel``/``f0`` files when it
names them, else computed from the audio), ``tokens`` ((L,) int64 from a tokenizer),
``text`` and ``id``. Audio-derived fields are cut or padded to exactly
``4 * T`` mel frames and ``640 * T`` samples when the ROI is loaded too, so that
the contract's frame ratios hold inside a batch.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from l2s.config import MEL_FRAMES_PER_VIDEO_FRAME, SAMPLES_PER_VIDEO_FRAME
from l2s.data.manifest import Utterance
from l2s.errors import InputError

FIELDS = ("id", "text", "roi", "wav", "mel", "f0", "tokens")


def load_roi(path) -> np.ndarray:
    """``(T, 96, 96)`` uint8 from a ``.npy`` or an ``.npz`` with key ``roi``."""
    if path is None:
        raise InputError("utterance has no 'roi' file: run `l2s prepare` (or generate the corpus with ROIs) first")
    data = np.load(path)
    return data["roi"] if isinstance(data, np.lib.npyio.NpzFile) else data


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad ``x`` along its first axis to exactly ``n``."""
    if len(x) >= n:
        return x[:n]
    pad = np.zeros((n - len(x),) + x.shape[1:], dtype=x.dtype)
    return np.concatenate([x, pad])


class ManifestDataset(Dataset):
    """Items of a manifest as dicts of numpy arrays / strings.

    Args:
        utts: the manifest's utterances.
        fields: which of :data:`FIELDS` to load.
        tokenizer: ``text -> list[int]`` for the ``tokens`` field.
    """

    def __init__(self, utts: Sequence[Utterance], fields: Sequence[str] = ("id", "roi", "text"),
                 tokenizer: Optional[Callable[[str], Sequence[int]]] = None):
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}; known: {FIELDS}")
        if "tokens" in fields and tokenizer is None:
            raise ValueError("the 'tokens' field needs a tokenizer")
        self.utts = list(utts)
        self.fields = tuple(fields)
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.utts)

    def lengths(self) -> np.ndarray:
        """Video frames per item (for bucketing); from the manifest, no file is opened."""
        return np.array([u.num_frames or round(u.duration * 25) for u in self.utts], dtype=np.int64)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        from l2s.features.mel import wav_to_mel
        from l2s.features.pitch import extract_f0

        utt = self.utts[index]
        item: Dict[str, Any] = {}
        if "id" in self.fields:
            item["id"] = utt.id
        if "text" in self.fields:
            item["text"] = utt.text
        if "tokens" in self.fields:
            item["tokens"] = np.asarray(self.tokenizer(utt.text), dtype=np.int64)
        n_video = None
        if "roi" in self.fields:
            item["roi"] = load_roi(utt.roi)
            n_video = len(item["roi"])
        if {"wav", "mel", "f0"} & set(self.fields):
            from l2s.io.audio import read_audio

            if utt.wav is None:
                raise InputError(f"{utt.id}: no 'wav' in the manifest")
            wav = read_audio(utt.wav).astype(np.float32)
            if n_video is not None:
                wav = fit_length(wav, n_video * SAMPLES_PER_VIDEO_FRAME)
            if "wav" in self.fields:
                item["wav"] = wav
            n_mel = None if n_video is None else n_video * MEL_FRAMES_PER_VIDEO_FRAME
            # Saved features (written by `l2s prepare`) are used when the manifest names them.
            if "mel" in self.fields:
                mel = np.load(utt.mel) if utt.mel is not None else wav_to_mel(torch.from_numpy(wav)).T.numpy()
                item["mel"] = mel if n_mel is None else fit_length(mel, n_mel)
            if "f0" in self.fields:
                f0 = np.load(utt.f0) if utt.f0 is not None else extract_f0(wav).f0
                item["f0"] = f0 if n_mel is None else fit_length(f0, n_mel)
        return item
