"""Faces and mouths: landmark tracking (:mod:`l2s.vision.face`) and the mouth ROI (:mod:`l2s.vision.roi`).

``extract_roi(video)`` is the one-call path from a video file (or frames) to the
``(T, 96, 96)`` uint8 mouth crops the lip reader takes.
"""

from l2s.vision.face import DetectorOptions, FaceTrack, load_sidecar, sidecar_path, track_face
from l2s.vision.roi import MouthROI, RoiOptions, extract_roi, mouth_roi

__all__ = ["DetectorOptions", "FaceTrack", "MouthROI", "RoiOptions", "extract_roi", "load_sidecar", "mouth_roi",
           "sidecar_path", "track_face"]
