"""Contact sheet of the mouth shape of every viseme class, for a person to look at (labels in X-SAMPA)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from l2s.corpora.synthgrid.face import STILL, FaceRenderer
from l2s.corpora.synthgrid.mouth import TARGETS
from l2s.corpora.synthgrid.phonemes import PHONEME_TO_VISEME, VISEMES
from l2s.corpora.synthgrid.speakers import Speaker, make_speakers
from l2s.io.atomic import atomic_write_bytes


# X-SAMPA spellings for the labels (OpenCV's fonts have no IPA glyphs).
_SAMPA = {"θ": "T", "ð": "D", "ɾ": "4", "ɫ": "5", "ʃ": "S", "ʒ": "Z", "tʃ": "tS", "dʒ": "dZ", "ɡ": "g", "ŋ": "N",
          "ʔ": "?", "ç": "C", "ʍ": "W", "ɹ": "r\\", "ɪ": "I", "ᵻ": "1", "ɨ": "1", "ɛ": "E", "ə": "@", "ʌ": "V",
          "ɜ": "3", "ɚ": "@`", "ɝ": "3`", "ɐ": "6", "ɘ": "@\\", "æ": "{", "ɑ": "A", "ɶ": "&", "ʊ": "U", "ʉ": "}",
          "ɵ": "8", "ʏ": "Y", "ɔ": "O", "ɒ": "Q"}


def preview_sheet(speaker: Optional[Speaker] = None, size: int = 160, zoom: int = 3, columns: int = 5) -> np.ndarray:
    """(H, W, 3) uint8 RGB: one tile per viseme class, the mouth region at its target pose, labelled."""
    speaker = speaker or make_speakers(1, 0)[0]
    frames, marks = FaceRenderer(speaker.face, size).render(TARGETS, STILL, fps=25)
    lips = marks["outer_lip"]
    cx, cy = lips[..., 0].mean(), lips[..., 1].mean()
    half = int(np.ceil(max(np.ptp(lips[..., 0]), 2 * np.ptp(lips[..., 1])) * 0.75)) + 4
    y0, x0 = int(cy) - half // 2, int(cx) - half
    tiles = []
    for v, frame in enumerate(frames):
        crop = np.pad(frame, ((half, half), (half, half), (0, 0)), mode="edge")[
            y0 + half:y0 + 2 * half, x0 + half:x0 + 3 * half]
        tile = cv2.resize(crop, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
        label = np.full((34, tile.shape[1], 3), 255, np.uint8)
        phones = " ".join(_SAMPA.get(p, p) for p, c in PHONEME_TO_VISEME.items() if c == v) or "(pause)"
        cv2.putText(label, f"{v} {VISEMES[v]}", (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(label, phones, (3, 29), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                    (90, 90, 90), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([tile, label], axis=0))
    blank = np.full_like(tiles[0], 255)
    tiles += [blank] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)


def write_preview(path: Path, speaker: Optional[Speaker] = None, size: int = 160) -> None:
    """Write :func:`preview_sheet` as a PNG, atomically."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(preview_sheet(speaker, size), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    atomic_write_bytes(path, data.tobytes())
