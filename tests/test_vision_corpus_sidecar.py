"""The landmark sidecar as the synthetic corpus writes it, read back by the mouth crop (a cross-module contract)."""

from __future__ import annotations

import numpy as np
import pytest

from l2s.config import ROI_SIZE
from l2s.vision import extract_roi
from l2s.vision.face import LAYOUT_LIPS_EYES, sidecar_path


def test_corpus_clip_sidecar_roi(tmp_path):
    generate = pytest.importorskip("l2s.corpora.synthgrid.generate")
    row = generate.make_clips(tmp_path, n=1, speakers=1)[0]
    video = tmp_path / row["video"]
    sidecar = sidecar_path(video)
    assert sidecar == tmp_path / row["landmarks"]
    result = extract_roi(video, sidecar=sidecar)
    assert result.track.layout == LAYOUT_LIPS_EYES
    assert result.roi.shape == (row["num_frames"], ROI_SIZE, ROI_SIZE) and result.roi.dtype == np.uint8
    np.testing.assert_allclose(result.mouth_centres, ROI_SIZE / 2, atol=1.5)
    # the mouth opens and closes in the crop: the clip says a sentence
    centre = result.roi[:, 36:60, 24:72].astype(np.float32)
    assert centre.std(axis=0).mean() > 3
