"""Procedural talking-face renderer (OpenCV, anti-aliased, sub-pixel polygons).

A clip is drawn in three layers. The face sprite (hair, ears, neck, head, nose,
brows, open eyes: everything that does not move relative to the head) is drawn
once per clip on a transparent canvas. Per frame, the mouth (lips, cavity, teeth,
tongue) and the eyelids are drawn on a copy of the sprite, the sprite is moved
by the frame's head pose (translation, rotation, scale) and composited over the
background; then the clip's lighting gradient and sensor noise are applied.
Landmarks are the canonical points moved by the same head pose.

Landmark sidecar (float32 pixels, x then y): ``face_box`` (T, 4) x0, y0, x1, y1;
``mouth_corners`` (T, 2, 2) left, right; ``outer_lip`` / ``inner_lip`` (T, 12, 2)
from the left corner clockwise on screen (index 3 top middle, 6 right corner,
9 bottom middle); ``eye_corners`` (T, 4, 2) left eye outer, left eye inner, right
eye inner, right eye outer (left = image left).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import cv2
import numpy as np

from l2s.corpora.synthgrid.mouth import landmark_subset, lip_contours

RGB = Tuple[int, int, int]
_SHIFT = 4  # sub-pixel bits of OpenCV's polygon drawing
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class FaceIdentity:
    """A person's look; sizes are fractions of the image side unless said otherwise."""

    face_width: float  # head width / image side
    face_aspect: float  # head height / head width
    jaw: float  # 0 round chin .. 1 square jaw
    skin: RGB
    lip: RGB
    lip_thickness: float  # x the average
    mouth_width: float  # / head width
    teeth: RGB
    eye_spacing: float  # eye centre offset / half head width
    eye_size: float  # x the average
    iris: RGB
    brow_thickness: float  # x the average
    hair: RGB
    hair_style: int  # 0 short, 1 side parting, 2 long
    background: Tuple[RGB, RGB]  # top and bottom colour of the wall


@dataclass(frozen=True)
class Nuisance:
    """Per-clip variation that carries no speech information.

    Head pose per frame is ``offset + sum_k amp_k * sin(2 pi f_k t + phase_k)`` for
    x, y (fractions of the side), rotation (degrees) and log-scale.
    """

    offset: Tuple[float, float, float, float]  # x, y, rotation, log-scale
    amplitude: Tuple[float, float, float, float]
    frequency: Tuple[float, float, float, float]  # Hz
    phase: Tuple[float, float, float, float]
    blinks: Tuple[int, ...]  # first frame of each blink
    light_direction: float  # radians
    light_strength: float  # relative gain change across the image
    brightness: float  # global gain
    noise_sigma: float  # sensor noise, 8-bit levels
    crf: int  # H.264 quality of the clip
    noise_seed: int


def sample_nuisance(rng: np.random.Generator, num_frames: int, fps: int) -> Nuisance:
    """Draw a clip's nuisance; ``num_frames``/``fps`` place the blinks (about one per 3 s)."""
    duration = num_frames / fps
    n_blinks = rng.poisson(duration / 3.0)
    blinks = tuple(sorted(int(b) for b in rng.integers(0, max(1, num_frames - 4), n_blinks)))
    return Nuisance(
        offset=(float(rng.normal(0, 0.025)), float(rng.normal(0, 0.02)), float(rng.normal(0, 2.5)),
                float(rng.normal(0, 0.04))),
        amplitude=(float(rng.uniform(0, 0.015)), float(rng.uniform(0, 0.01)), float(rng.uniform(0, 2.0)),
                   float(rng.uniform(0, 0.02))),
        frequency=tuple(float(f) for f in rng.uniform(0.15, 0.7, 4)),
        phase=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 4)),
        blinks=blinks,
        light_direction=float(rng.uniform(0, 2 * np.pi)),
        light_strength=float(rng.uniform(0.0, 0.3)),
        brightness=float(rng.uniform(0.85, 1.1)),
        noise_sigma=float(rng.uniform(0.5, 3.0)),
        crf=int(rng.integers(20, 29)),
        noise_seed=int(rng.integers(0, 2 ** 31 - 1)),
    )


STILL = Nuisance((0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0), (), 0.0, 0.0, 1.0, 0.0, 18, 0)
"""No head motion, blinks, lighting or noise (previews, tests)."""


def _pts(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _poly(img: np.ndarray, points: np.ndarray, color) -> None:
    if len(points) >= 3:
        cv2.fillPoly(img, [_pts(points)], color, cv2.LINE_AA, _SHIFT)


def _ellipse_pts(cx, cy, rx, ry, n=40, a0=0.0, a1=2 * np.pi) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _rgba(color: RGB, alpha: int = 255) -> Tuple[int, int, int, int]:
    return (int(color[0]), int(color[1]), int(color[2]), alpha)


def _shade(color: RGB, f: float) -> RGB:
    return tuple(int(np.clip(c * f, 0, 255)) for c in color)


class FaceRenderer:
    """Draws one identity at one image size; :meth:`render` makes a clip."""

    def __init__(self, face: FaceIdentity, size: int = 160) -> None:
        self.face, self.size = face, size
        s = float(size)
        self.rw = 0.5 * face.face_width * s
        self.rh = self.rw * face.face_aspect
        self.cx, self.cy = 0.5 * s, 0.47 * s
        self.mouth_c = np.array([self.cx, self.cy + 0.5 * self.rh])
        self.mouth_w = face.mouth_width * 2 * self.rw
        self.lip_t = 0.085 * self.mouth_w * face.lip_thickness
        self.max_open = 0.45 * self.mouth_w
        ey = self.cy - 0.1 * self.rh
        dx = face.eye_spacing * self.rw
        self.eye_r = (0.16 * self.rw * face.eye_size, 0.075 * self.rw * face.eye_size)
        self.eyes = np.array([[self.cx - dx, ey], [self.cx + dx, ey]])
        self.head = self._head_outline()
        self.sprite = self._draw_sprite()
        self.background = self._draw_background()

    # -- static layers -------------------------------------------------------------------------------------------
    def _head_outline(self) -> np.ndarray:
        t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        x, y = np.cos(t), np.sin(t)
        lower = y > 0
        # Narrow the lower half toward the chin; a square jaw keeps its width longer.
        taper = 1.0 - (0.35 - 0.2 * self.face.jaw) * np.clip(y, 0, 1) ** (1.5 + 2.0 * self.face.jaw)
        x = np.where(lower, x * taper, x)
        return np.stack([self.cx + self.rw * x, self.cy + self.rh * y], 1)

    def _draw_background(self) -> np.ndarray:
        top, bottom = (np.array(c, np.float32) for c in self.face.background)
        w = np.linspace(0, 1, self.size, dtype=np.float32)[:, None, None]
        return np.broadcast_to(top * (1 - w) + bottom * w, (self.size, self.size, 3)).copy()

    def _draw_sprite(self) -> np.ndarray:
        f, s = self.face, self.size
        img = np.zeros((s, s, 4), np.uint8)
        skin, hair = f.skin, f.hair
        # shoulders and neck
        neck_top = self.cy + 0.6 * self.rh
        _poly(img, np.array([[self.cx - 0.45 * self.rw, neck_top], [self.cx + 0.45 * self.rw, neck_top],
                             [self.cx + 0.5 * self.rw, s + 2], [self.cx - 0.5 * self.rw, s + 2]]),
              _rgba(_shade(skin, 0.85)))
        _poly(img, np.array([[self.cx - 2.2 * self.rw, s + 2], [self.cx - 0.45 * self.rw, self.cy + 1.25 * self.rh],
                             [self.cx + 0.45 * self.rw, self.cy + 1.25 * self.rh], [self.cx + 2.2 * self.rw, s + 2]]),
              _rgba(_shade(f.background[1], 0.45)))
        if f.hair_style == 2:  # long hair behind the head
            crown = _ellipse_pts(self.cx, self.cy, 1.18 * self.rw, 1.05 * self.rh, 30, np.pi, 2 * np.pi)
            _poly(img, np.concatenate([crown,
                                       [[self.cx + 1.2 * self.rw, self.cy + 1.1 * self.rh],
                                        [self.cx - 1.2 * self.rw, self.cy + 1.1 * self.rh]]]), _rgba(hair))
        for side in (-1, 1):  # ears
            _poly(img, _ellipse_pts(self.cx + side * 0.97 * self.rw, self.cy + 0.02 * self.rh, 0.14 * self.rw,
                                    0.22 * self.rh, 24), _rgba(_shade(skin, 0.93)))
        _poly(img, self.head, _rgba(skin))
        # hair cap over the top of the head
        cap = _ellipse_pts(self.cx, self.cy - 0.02 * self.rh, 1.04 * self.rw, 1.04 * self.rh, 36, np.pi, 2 * np.pi)
        fringe = 0.55 if f.hair_style == 1 else 0.42
        hair_line = np.stack([np.linspace(self.cx + 1.04 * self.rw, self.cx - 1.04 * self.rw, 9),
                              self.cy - self.rh * (fringe - 0.25 * np.sin(np.linspace(0, np.pi, 9)) ** 2
                                                   * (1 if f.hair_style != 1 else 0.5))], 1)
        _poly(img, np.concatenate([cap, hair_line]), _rgba(hair))
        # nose: a shaded ridge and nostrils
        nx, ny = self.cx, self.cy + 0.22 * self.rh
        _poly(img, np.array([[nx - 0.02 * self.rw, self.cy - 0.05 * self.rh], [nx + 0.1 * self.rw, ny],
                             [nx - 0.08 * self.rw, ny]]), _rgba(_shade(skin, 0.88)))
        for side in (-1, 1):
            nostril = _ellipse_pts(nx + side * 0.07 * self.rw, ny + 0.01 * self.rh, 0.035 * self.rw,
                                   0.018 * self.rh, 12)
            _poly(img, nostril, _rgba(_shade(skin, 0.55)))
        # brows and open eyes
        for side, (ex, ey) in zip((-1, 1), self.eyes):
            bt = 0.03 * self.rh * f.brow_thickness
            bx = np.linspace(ex - 1.2 * self.eye_r[0], ex + 1.2 * self.eye_r[0], 9)
            by = ey - 2.2 * self.eye_r[1] - 0.6 * self.eye_r[1] * np.sin(np.linspace(0, np.pi, 9))
            _poly(img, np.concatenate([np.stack([bx, by - bt], 1), np.stack([bx[::-1], by[::-1] + bt], 1)]),
                  _rgba(_shade(hair, 0.8)))
            _poly(img, self._eye_outline(ex, ey), (245, 245, 240, 255))
            _poly(img, _ellipse_pts(ex, ey, 0.42 * self.eye_r[0], 0.42 * self.eye_r[0], 20), _rgba(f.iris))
            _poly(img, _ellipse_pts(ex, ey, 0.18 * self.eye_r[0], 0.18 * self.eye_r[0], 12), (15, 15, 15, 255))
        return img

    def _eye_outline(self, ex: float, ey: float) -> np.ndarray:
        u = np.linspace(-1, 1, 13)
        top = ey - self.eye_r[1] * np.sqrt(1 - u ** 2)
        bot = ey + 0.8 * self.eye_r[1] * np.sqrt(1 - u ** 2)
        x = ex + u * self.eye_r[0]
        return np.concatenate([np.stack([x, top], 1), np.stack([x[::-1], bot[::-1]], 1)])

    # -- per frame -----------------------------------------------------------------------------------------------
    def mouth_shapes(self, pose: np.ndarray):
        """Canonical-pixel lip polygons of one pose (see :func:`~l2s.corpora.synthgrid.mouth.lip_contours`)."""
        outer, inner, teeth, tongue, aperture = lip_contours(pose, self.mouth_w, self.lip_t, self.max_open)
        c = self.mouth_c
        return (outer + c, inner + c, (teeth + c if len(teeth) else teeth), (tongue + c if len(tongue) else tongue),
                aperture)

    def _draw_mouth(self, img: np.ndarray, shapes) -> None:
        outer, inner, teeth, tongue, aperture = shapes
        f = self.face
        _poly(img, outer, _rgba(f.lip))
        if aperture > 0.5:
            _poly(img, inner, (45, 18, 22, 255))
            _poly(img, tongue, _rgba((190, 90, 95)))
            _poly(img, teeth, _rgba(f.teeth))
        else:  # lips in contact: only the seam shows
            cv2.polylines(img, [_pts(inner[: len(inner) // 2 + 1])], False, _rgba(_shade(f.lip, 0.5)), 1,
                          cv2.LINE_AA, _SHIFT)

    def _draw_blink(self, img: np.ndarray, closure: float) -> None:
        for ex, ey in self.eyes:
            outline = self._eye_outline(ex, ey)
            n = len(outline) // 2
            top = outline[:n]
            lid_edge = top.copy()
            lid_edge[:, 1] = top[:, 1] + closure * (ey + 0.8 * self.eye_r[1] - top[:, 1]) * np.sqrt(
                np.clip(1 - ((top[:, 0] - ex) / self.eye_r[0]) ** 2, 0, 1))
            lid = np.concatenate([top - [0, 1.0], lid_edge[::-1]])
            _poly(img, lid, _rgba(_shade(self.face.skin, 0.92)))

    def head_pose(self, nuisance: Nuisance, num_frames: int, fps: int) -> np.ndarray:
        """(T, 2, 3) affine matrices mapping canonical to image pixels."""
        t = np.arange(num_frames) / fps
        v = np.array(nuisance.offset) + np.array(nuisance.amplitude) * np.sin(
            2 * np.pi * np.array(nuisance.frequency) * t[:, None] + np.array(nuisance.phase))
        mats = np.empty((num_frames, 2, 3))
        for i, (x, y, rot, logs) in enumerate(v):
            m = cv2.getRotationMatrix2D((self.cx, self.cy + 0.3 * self.rh), float(rot), float(np.exp(logs)))
            m[:, 2] += (x * self.size, y * self.size)
            mats[i] = m
        return mats

    def render(self, poses: np.ndarray, nuisance: Nuisance, fps: int) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """Draw a clip.

        Args:
            poses: (T, 4) mouth poses (see :mod:`~l2s.corpora.synthgrid.mouth`).
            nuisance: the clip's head motion, blinks, lighting and noise.
            fps: frame rate (places the blinks and the head motion in time).

        Returns:
            frames (T, S, S, 3) uint8 RGB and the landmark arrays (see module doc).
        """
        num = len(poses)
        s = self.size
        mats = self.head_pose(nuisance, num, fps)
        closure = np.zeros(num)
        for b in nuisance.blinks:
            for k, c in enumerate((0.5, 1.0, 0.8, 0.35)):
                if b + k < num:
                    closure[b + k] = max(closure[b + k], c)
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s - 0.5
        gain = nuisance.brightness * (1 + nuisance.light_strength * (np.cos(nuisance.light_direction) * xx
                                                                     + np.sin(nuisance.light_direction) * yy))
        gain = np.repeat(gain[..., None], 3, axis=2).astype(np.float32)
        background = np.clip(self.background + 0.5, 0, 255).astype(np.uint8)
        noise_rng = np.random.default_rng(nuisance.noise_seed)
        noise_bank = noise_rng.normal(0, nuisance.noise_sigma, (2 * s, 2 * s, 3)).astype(np.float32) + 0.5
        offsets = noise_rng.integers(0, s, (num, 2))
        frames = np.empty((num, s, s, 3), np.uint8)
        marks = {k: np.empty(shape, np.float32) for k, shape in (
            ("face_box", (num, 4)), ("mouth_corners", (num, 2, 2)), ("outer_lip", (num, 12, 2)),
            ("inner_lip", (num, 12, 2)), ("eye_corners", (num, 4, 2)))}
        eye_pts = np.array([[ex + side * self.eye_r[0], ey] for ex, ey in self.eyes for side in (-1, 1)])
        for i in range(num):
            shapes = self.mouth_shapes(poses[i])
            sprite = self.sprite.copy()
            self._draw_mouth(sprite, shapes)
            if closure[i] > 0:
                self._draw_blink(sprite, closure[i])
            warped = cv2.warpAffine(sprite, mats[i], (s, s), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
            alpha = warped[..., 3].astype(np.float32) * (1.0 / 255)
            img = cv2.blendLinear(warped[..., :3], background, alpha, 1.0 - alpha)
            oy, ox = offsets[i]
            lit = cv2.multiply(img, gain, dtype=cv2.CV_32F)
            frames[i] = np.clip(cv2.add(lit, noise_bank[oy:oy + s, ox:ox + s]), 0, 255).astype(np.uint8)

            def move(p):
                return p @ mats[i][:, :2].T + mats[i][:, 2]

            head = move(self.head)
            marks["face_box"][i] = (*head.min(0), *head.max(0))
            outer, inner = move(shapes[0]), move(shapes[1])
            marks["outer_lip"][i] = landmark_subset(outer)
            marks["inner_lip"][i] = landmark_subset(inner)
            marks["mouth_corners"][i] = outer[[0, len(outer) // 2]]
            marks["eye_corners"][i] = move(eye_pts)
        return frames, marks
