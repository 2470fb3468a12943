"""Mouth motion: viseme targets, coarticulation by dominance functions, lip contours.

A mouth pose is four numbers: ``open`` (jaw and lip aperture, 0 closed .. 1 wide),
``spread`` (-1 rounded and protruded .. 1 spread), ``teeth`` (how much of the upper
teeth shows) and ``tongue`` (how far the tongue tip shows). Each viseme class has
one target pose and one dominance ``alpha``; the target apertures follow the
sonority (and loudness) of the class, open vowels widest, obstruents narrowest. Following Cohen and Massaro (1993),
the pose at time ``t`` is the dominance-weighted mean of the targets of all
phonemes, where a phoneme's dominance is ``alpha`` inside its interval and decays
exponentially outside it (to 1 with ``TAU_STRONG``, then to 0 with ``TAU``). Bilabials dominate strongly, so
the lips close whatever surrounds them; velars and /h/ dominate weakly and take
the shape of their neighbours. An aperture below ``CONTACT`` renders as lips in
contact (lip compression).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from l2s.corpora.synthgrid.phonemes import VISEMES

TAU = 0.02  # s: decay of a phoneme's dominance outside its interval
TAU_STRONG = 0.01  # s: decay of the extra dominance of strong classes outside their interval
ANTICIPATION = 0.03  # s: the lips reach a target this much before its sound (anticipatory coarticulation)
CONTACT = 0.04  # apertures below this render as closed lips
K_LANDMARKS = 12  # points of each lip contour in the landmark sidecar
_N_DENSE = 17  # samples per lip edge when drawing (odd: one at the centre)

# viseme -> (open, spread, teeth, tongue, dominance)
_TARGETS = {
    "sil": (0.03, 0.0, 0.0, 0.0, 0.8),
    "bilabial": (0.0, 0.0, 0.0, 0.0, 40.0),
    "labiodental": (0.1, 0.1, 1.0, 0.0, 15.0),
    "dental": (0.16, 0.1, 0.8, 1.0, 6.0),
    "alveolar": (0.16, 0.15, 0.7, 0.2, 1.0),
    "postalveolar": (0.2, -0.6, 0.8, 0.0, 5.0),
    "velar": (0.22, 0.0, 0.3, 0.3, 0.4),
    "round-approx": (0.3, -0.8, 0.1, 0.0, 3.0),
    "spread": (0.5, 0.7, 0.8, 0.0, 1.5),
    "mid": (0.65, 0.1, 0.5, 0.1, 1.0),
    "open": (1.0, 0.2, 0.4, 0.4, 1.2),
    "round-close": (0.42, -0.9, 0.1, 0.0, 3.0),
    "round-open": (0.8, -0.6, 0.2, 0.1, 2.0),
}
#: (13, 4) target pose per viseme id
TARGETS = np.array([_TARGETS[v][:4] for v in VISEMES], dtype=np.float64)
#: (13,) dominance per viseme id
DOMINANCE = np.array([_TARGETS[v][4] for v in VISEMES], dtype=np.float64)

VisemeInterval = Tuple[int, float, float]  # (viseme id, start s, end s)


def _speech_depth(start: np.ndarray, end: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(T,) distance from each time to the nearest silence (0 in silence): phoneme intervals that touch
    or overlap make one stretch of speech."""
    order = np.argsort(start)
    runs = []
    for s, e in zip(start[order], end[order]):
        if runs and s <= runs[-1][1] + 1e-6:
            runs[-1][1] = max(runs[-1][1], e)
        else:
            runs.append([s, e])
    r = np.array(runs)
    return np.maximum(0.0, np.minimum(times[:, None] - r[None, :, 0], r[None, :, 1] - times[:, None])).max(1)


def mouth_track(visemes: Sequence[VisemeInterval], times: np.ndarray) -> np.ndarray:
    """Coarticulated mouth poses at ``times``.

    Args:
        visemes: (viseme id, start, end) in seconds; gaps count as silence.
        times: (T,) seconds, e.g. the video frame centres.

    Returns:
        (T, 4) float64 poses (open, spread, teeth, tongue).
    """
    if not visemes:
        return np.tile(TARGETS[0], (len(times), 1))
    times = np.asarray(times, dtype=np.float64) + ANTICIPATION
    ids = np.array([v for v, _, _ in visemes])
    start = np.array([s for _, s, _ in visemes])
    end = np.array([e for _, _, e in visemes])
    # (T, P) distance of each time to each phoneme's interval (0 inside it)
    dist = np.maximum(0.0, np.maximum(start[None, :] - times[:, None], times[:, None] - end[None, :]))
    # A strong class rules its own interval but its extra weight fades fast (TAU_STRONG) outside it,
    # so a /m/ closes the lips without holding the middle of the next vowel half shut.
    alpha = DOMINANCE[ids][None, :]
    dom = (1.0 + (alpha - 1.0) * np.exp(-dist / TAU_STRONG)) * np.exp(-dist / TAU)
    # Silence (before the first phoneme, after the last one and in every gap between phonemes): a rest
    # pose of constant weight, fading with the depth into a stretch of speech.
    rest = DOMINANCE[0] * np.exp(-_speech_depth(start, end, times)[:, None] / TAU)
    weights = np.concatenate([dom, rest], axis=1)
    targets = np.concatenate([TARGETS[ids], TARGETS[:1]], axis=0)
    return weights @ targets / weights.sum(axis=1, keepdims=True)


def lip_contours(pose: np.ndarray, width: float, thickness: float, max_open: float) -> Tuple[np.ndarray, ...]:
    """Dense lip outlines of one pose, in pixels around the mouth centre (y down).

    Args:
        pose: (4,) open, spread, teeth, tongue.
        width: corner-to-corner width of the neutral mouth.
        thickness: upper lip height at the middle (the lower lip is 1.25x).
        max_open: inner aperture at ``open = 1``.

    Returns:
        outer (2N-2, 2), inner (2N-2, 2): closed contours from the left corner along
        the upper lip and back along the lower lip; teeth (M, 2) and tongue (M, 2)
        polygons (empty when hidden); aperture (float, px).
    """
    open_, spread, teeth, tongue = (float(v) for v in pose)
    aperture = max(0.0, open_ - CONTACT) / (1.0 - CONTACT) * max_open
    rounding = max(0.0, -spread)
    half = 0.5 * width * (1.0 + 0.12 * spread)
    inner_half = half * (0.9 - 0.12 * rounding)
    lip_up = thickness * (1.0 + 0.3 * rounding)
    lip_lo = 1.25 * thickness * (1.0 + 0.3 * rounding)
    u = np.linspace(-1.0, 1.0, _N_DENSE)
    shape = (1.0 - u ** 2) ** (0.8 - 0.3 * rounding)  # rounder opening when rounded
    up_in = -0.3 * aperture * shape
    lo_in = 0.7 * aperture * shape
    bow = 0.18 * lip_up * np.exp(-(u / 0.15) ** 2)  # the dip of the cupid's bow
    up_out = up_in - lip_up * (0.25 + 0.75 * (1.0 - u ** 2) ** 0.6) + bow
    lo_out = lo_in + lip_lo * (0.2 + 0.8 * (1.0 - u ** 2) ** 0.7)
    corner_y = 0.15 * aperture
    xo, xi = u * half, u * inner_half
    outer = np.concatenate([np.stack([xo, up_out + corner_y * (1 - shape)], 1),
                            np.stack([xo[::-1], lo_out[::-1] + corner_y * (1 - shape[::-1])], 1)[1:-1]])
    inner = np.concatenate([np.stack([xi, up_in + corner_y], 1), np.stack([xi[::-1], lo_in[::-1] + corner_y], 1)[1:-1]])
    teeth_poly = np.zeros((0, 2))
    tongue_poly = np.zeros((0, 2))
    if aperture > 0.5:
        inside = np.abs(u) <= 0.75
        top = up_in[inside] + corner_y
        bottom = np.minimum(top + teeth * 0.22 * width, lo_in[inside] + corner_y)
        if teeth > 0.05:
            teeth_poly = np.concatenate([np.stack([xi[inside], top], 1), np.stack([xi[inside][::-1], bottom[::-1]], 1)])
        if tongue > 0.05:
            tip = np.abs(u) <= 0.6
            floor = lo_in[tip] + corner_y
            arch = floor - tongue * 0.8 * aperture * (1.0 - (u[tip] / 0.6) ** 2)
            tongue_poly = np.concatenate([np.stack([xi[tip], floor], 1), np.stack([xi[tip][::-1], arch[::-1]], 1)])
    return outer, inner, teeth_poly, tongue_poly, aperture


def landmark_subset(contour: np.ndarray) -> np.ndarray:
    """(2N-2, 2) dense closed contour -> (K_LANDMARKS, 2) evenly spaced by index, starting at the left corner."""
    idx = np.round(np.linspace(0, len(contour), K_LANDMARKS, endpoint=False)).astype(int)
    return contour[idx]
