"""The corpus's H.264 writer: yuv420p frames through x264; ``exact`` turns x264's SIMD off for byte-stable output."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from l2s.corpora.synthgrid.encode import write_h264
from l2s.io.video import read_video

_SCRIPT = """
import sys, numpy as np
from pathlib import Path
from l2s.corpora.synthgrid.encode import write_h264
write_h264(Path(sys.argv[2]), np.load(sys.argv[1]), crf=23, exact=True)
"""


def _frames() -> np.ndarray:
    y, x = np.mgrid[:64, :64]
    return np.stack([np.stack([(x * 4 + t * 9) % 256, (y * 4) % 256, ((x + y) * 2 + t) % 256], -1)
                     for t in range(12)]).astype(np.uint8)


def test_exact_encoding_decodes_close_to_the_frames(tmp_path):
    path = tmp_path / "clip.mp4"
    write_h264(path, _frames(), crf=18, exact=True)
    decoded = read_video(path, with_audio=False).frames
    assert decoded.shape == (12, 64, 64, 3)
    assert np.abs(decoded.astype(int) - _frames().astype(int)).mean() < 12


def test_exact_encoding_is_the_same_bytes_in_separate_processes(tmp_path):
    frames = tmp_path / "frames.npy"
    np.save(frames, _frames())
    outs = []
    for i in range(3):  # x264's SIMD paths differed between processes now and then; asm=0 did not
        out = tmp_path / f"{i}.mp4"
        subprocess.run([sys.executable, "-c", _SCRIPT, str(frames), str(out)], check=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
