"""Where a clip shows no face, and what l2s does there.

The face stage reports, per frame, whether the tracked face was measured (``found``); elsewhere its
landmarks are interpolated between the nearest measured frames (held at the ends), so the mouth crop
there shows whatever lies at the interpolated place. Short dropouts (a blink of the detector) are
harmless and stay voiced. A stretch of at least :data:`MIN_GAP_S` without the face is a *gap*: the
CLI names it on stderr and in the sidecar, and :func:`silence_gaps` makes the output silent there
(speech generated from crops of no mouth would be invented). A clip whose face is in fewer than
:data:`MIN_FACE_SHARE` of its frames is warned about (an error with ``l2s synthesize --strict``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Tuple

import numpy as np

from l2s.config import FPS, MEL_FRAMES_PER_VIDEO_FRAME, SAMPLES_PER_VIDEO_FRAME, SILENT_MEL

#: Shortest stretch without the face that is reported and silenced (shorter ones are interpolated).
MIN_GAP_S = 0.4
MIN_GAP_FRAMES = int(round(MIN_GAP_S * FPS))
#: Below this share of frames with the face, a clip is warned about (refused with --strict).
MIN_FACE_SHARE = 0.5
#: Fade into and out of a silenced gap (inside the gap), so its edges do not click.
FADE_S = 0.02
#: The model-space mel of silence: ``ln(log_floor) / norm_scale + 1`` (-1).

__all__ = ["FaceCoverage", "face_coverage", "silence_gaps", "MIN_GAP_S", "MIN_FACE_SHARE"]


@dataclass(frozen=True)
class FaceCoverage:
    """Which frames of a clip had the face.

    Attributes:
        num_frames: frames of the clip (25 fps).
        face_frames: frames where the tracked face was measured.
        gaps: ``[start, end)`` frames of each stretch of at least :data:`MIN_GAP_FRAMES` without it.
    """

    num_frames: int
    face_frames: int
    gaps: Tuple[Tuple[int, int], ...] = ()

    @property
    def share(self) -> float:
        """Share of frames with the face (1 for an empty clip)."""
        return self.face_frames / self.num_frames if self.num_frames else 1.0

    @property
    def too_little(self) -> bool:
        return self.share < MIN_FACE_SHARE

    def gap_seconds(self) -> Tuple[Tuple[float, float], ...]:
        return tuple((round(s / FPS, 2), round(e / FPS, 2)) for s, e in self.gaps)

    def describe_gaps(self) -> str:
        """``"0.00-1.20 s, 3.00-4.40 s"``."""
        return ", ".join(f"{s:.2f}-{e:.2f} s" for s, e in self.gap_seconds())

    def to_dict(self) -> Dict[str, Any]:
        """What the sidecar records."""
        return {"frames": self.num_frames, "frames_with_face": self.face_frames, "share": round(self.share, 4),
                "no_face_s": [list(g) for g in self.gap_seconds()], "no_face_audio": "silence",
                "min_gap_s": MIN_GAP_S}


def face_coverage(found: Optional[np.ndarray], min_gap_frames: int = MIN_GAP_FRAMES) -> Optional[FaceCoverage]:
    """The coverage of a ``(T,)`` bool ``found`` array (None when the input reported none, e.g. a bare ROI)."""
    if found is None:
        return None
    from l2s.features.pitch import voiced_runs

    missing = ~np.asarray(found, dtype=bool)
    gaps = tuple((int(s), int(e)) for s, e in voiced_runs(missing) if e - s >= min_gap_frames)
    return FaceCoverage(num_frames=int(missing.shape[0]), face_frames=int((~missing).sum()), gaps=gaps)


def silence_gaps(result, coverage: Optional[FaceCoverage]):
    """``result`` (a :class:`~l2s.pipeline.SynthesisResult`) silent over the coverage's gaps.

    The waveform is zero there (faded over :data:`FADE_S` inside each gap), the generated and the
    prior's mels are the silent value and the F0 unvoiced, so the sidecar, the plot and the audio agree.
    """
    if coverage is None or not coverage.gaps:
        return result
    wav = np.array(result.wav, dtype=np.float32, copy=True)
    mel = np.array(result.mel, dtype=np.float32, copy=True)
    f0 = None if result.f0 is None else np.array(result.f0, dtype=np.float32, copy=True)
    prior = getattr(result, "prior_mel", None)
    prior = None if prior is None else np.array(prior, dtype=np.float32, copy=True)
    fade = max(1, int(round(FADE_S * result.sample_rate)))
    for start, end in coverage.gaps:
        a, b = start * SAMPLES_PER_VIDEO_FRAME, min(end * SAMPLES_PER_VIDEO_FRAME, wav.shape[0])
        n = min(fade, (b - a) // 2)
        ramp = np.linspace(1.0, 0.0, n, endpoint=False, dtype=np.float32)
        # fade out after speech and back in before it; a gap at an end of the clip is silent to that end
        n_out = n if a > 0 else 0
        n_in = n if b < wav.shape[0] else 0
        wav[a:a + n_out] *= ramp[:n_out]
        wav[b - n_in:b] *= ramp[::-1][n - n_in:]
        wav[a + n_out:b - n_in] = 0.0
        m0, m1 = start * MEL_FRAMES_PER_VIDEO_FRAME, end * MEL_FRAMES_PER_VIDEO_FRAME
        mel[:, m0:m1] = SILENT_MEL
        if prior is not None:
            prior[:, m0:m1] = SILENT_MEL
        if f0 is not None:
            f0[m0:m1] = 0.0
    extra = {"prior_mel": prior} if prior is not None else {}
    return replace(result, wav=wav, mel=mel, f0=f0, **extra)
