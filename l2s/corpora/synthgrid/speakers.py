"""Speakers: fixed (engine, voice, F0 scale, warp, rate, face) tuples drawn from a seed.

Voices and faces share a latent body size ``z`` (and the voice's sex), so that
a bigger face goes with a longer vocal tract (lower formants, ``warp < 1``) and a
lower F0, loosely (independent noise on every attribute): voice prediction from
the face is possible but imperfect, as with real people.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List

import numpy as np

from l2s.corpora.synthgrid import tts_espeak
from l2s.corpora.synthgrid.face import FaceIdentity

# Hues of skin, lips, hair, irises and walls the faces are drawn from.
_SKINS = ((241, 194, 160), (224, 172, 140), (198, 134, 96), (160, 102, 70), (112, 72, 50), (232, 190, 170))
_HAIRS = ((30, 25, 22), (70, 45, 28), (120, 80, 45), (190, 150, 90), (150, 150, 150), (100, 40, 25))
_IRISES = ((60, 40, 25), (70, 110, 60), (60, 100, 150), (100, 80, 50))
_WALLS = ((120, 140, 170), (170, 160, 140), (110, 130, 110), (150, 120, 130), (90, 90, 100), (180, 180, 185))


@dataclass(frozen=True)
class Speaker:
    """One corpus speaker.

    Attributes:
        id: ``s01``...
        engine: ``piper`` or ``espeak``.
        voice: the engine's voice (``joe``, ``en-gb-scotland+f2``...).
        f0_scale: multiplies the voice's F0.
        warp: spectral-envelope frequency scale (> 1: shorter vocal tract).
        rate: speaking rate (> 1: faster).
        face: the look of the speaker.
    """

    id: str
    engine: str
    voice: str
    f0_scale: float
    warp: float
    rate: float
    face: FaceIdentity

    @property
    def voice_key(self) -> str:
        """The base voice (word bank) this speaker transforms."""
        return f"{self.engine}:{self.voice}"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Speaker":
        face = dict(d["face"])
        for k in ("skin", "lip", "teeth", "iris", "hair"):
            face[k] = tuple(face[k])
        face["background"] = tuple(tuple(c) for c in face["background"])
        return cls(**{**d, "face": FaceIdentity(**face)})


def _jitter(rng: np.random.Generator, color, spread: float = 12.0):
    return tuple(int(np.clip(c + rng.normal(0, spread), 0, 255)) for c in color)


def _face(rng: np.random.Generator, z: float, female: bool) -> FaceIdentity:
    skin = _jitter(rng, _SKINS[rng.integers(len(_SKINS))])
    lip_base = np.array(skin) * np.array([0.85, 0.55, 0.58]) + (np.array([25, 0, 5]) if female else 0)
    wall = _WALLS[rng.integers(len(_WALLS))]
    return FaceIdentity(
        face_width=float(np.clip(0.5 + 0.03 * z + rng.normal(0, 0.02) - (0.02 if female else 0), 0.4, 0.6)),
        face_aspect=float(np.clip(1.3 + 0.05 * z + rng.normal(0, 0.05), 1.15, 1.45)),
        jaw=float(np.clip(0.5 + 0.2 * z - (0.25 if female else 0) + rng.normal(0, 0.15), 0, 1)),
        skin=skin,
        lip=_jitter(rng, lip_base, 8),
        lip_thickness=float(np.clip(rng.normal(1.0, 0.15) + (0.1 if female else 0), 0.65, 1.4)),
        mouth_width=float(np.clip(rng.normal(0.42, 0.03), 0.34, 0.5)),
        teeth=_jitter(rng, (238, 234, 220), 6),
        eye_spacing=float(np.clip(rng.normal(0.42, 0.03), 0.34, 0.5)),
        eye_size=float(np.clip(rng.normal(1.0, 0.1) + (0.06 if female else 0), 0.75, 1.3)),
        iris=_IRISES[rng.integers(len(_IRISES))],
        brow_thickness=float(np.clip(1.0 + 0.25 * z + (-0.3 if female else 0.1) + rng.normal(0, 0.15), 0.4, 1.8)),
        hair=_jitter(rng, _HAIRS[rng.integers(len(_HAIRS))], 8),
        hair_style=int(rng.choice(3, p=(0.15, 0.25, 0.6) if female else (0.55, 0.4, 0.05))),
        background=(_jitter(rng, wall, 10), _jitter(rng, np.array(wall) * 0.6, 8)),
    )


def make_speakers(n: int, seed: int, unseen: int = 0, espeak_share: float = 0.2) -> List[Speaker]:
    """``n`` speakers, reproducible from ``seed``; the last ``unseen`` are the held-out ones.

    About ``espeak_share`` of the seen speakers are espeak-ng (they alternate
    deterministically, so any prefix mixes both engines); held-out speakers are all
    Piper, whose whole-sentence speech is the intelligible one (espeak-ng scores 63-74 %
    WER with Whisper tiny.en even unspliced), so the test-unseen ceiling measures the
    corpus, not the weaker engine. espeak speakers cycle through the accents with a
    random variant.

    Piper speakers are made by a tape-speed factor (see ``speech.py``) that scales F0
    and formants together, so their ``f0_scale`` equals their ``warp``; espeak speakers
    draw the two independently (WORLD applies them).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EA4E]))
    use_espeak = tts_espeak.available()
    n_seen = n - unseen
    speakers = []
    n_espeak = 0
    for i in range(n):
        espeak = use_espeak and i < n_seen and int((i + 1) * espeak_share) > int(i * espeak_share)
        z = float(rng.normal())
        if not espeak:
            engine, voice, female = "piper", "joe", bool(rng.random() < 0.4)
        else:
            accent = tts_espeak.ACCENTS[n_espeak % len(tts_espeak.ACCENTS)]
            variant = tts_espeak.VARIANTS[rng.integers(len(tts_espeak.VARIANTS))]
            engine, voice, female = "espeak", f"{accent}+{variant}", variant.startswith("f")
            n_espeak += 1
        f0_scale = float(np.clip(np.exp(-0.08 * z + rng.normal(0, 0.05)), 0.75, 1.7))
        warp = float(np.clip(1.0 - 0.03 * z + rng.normal(0, 0.015), 0.92, 1.08))
        if engine == "piper":
            # Piper's joe is male: a "female" (smaller) Piper speaker is a faster tape.
            tape = float(np.clip((1.18 if female else 1.0) * np.exp(-0.04 * z + rng.normal(0, 0.03)), 0.88, 1.3))
            f0_scale = warp = tape
        speakers.append(Speaker(
            id=f"s{i + 1:02d}",
            engine=engine,
            voice=voice,
            f0_scale=round(f0_scale, 4),
            warp=round(warp, 4),
            rate=round(float(np.clip(rng.normal(1.0, 0.05), 0.9, 1.1)), 4),
            face=_face(rng, z, female),
        ))
    return speakers
