"""MediaPipe's face graphs, built once per process and shared by every clip.

Three graphs, all with models bundled in the ``mediapipe`` wheel (offline):

* :func:`face_finder`: the full-range face detector (BlazeFace, 192 px input): boxes and six
  key points (eyes, nose tip, mouth centre, ear tragions) of faces down to a few percent of the
  frame width;
* :func:`region_landmarker`: the face-landmark model (468 points, 192 px input) on a region the
  caller gives, as MediaPipe's ``FaceLandmarkCpu`` subgraph runs it, with the region as an input
  and the face-presence score as an output. This is what MediaPipe's own video (tracking) mode
  runs between detections, the region coming from the previous frame's landmarks;
* :func:`static_mesh`: face mesh in static-image mode, which runs its own short-range detector
  before the landmarks on every call (the per-frame path).

Building a graph costs tens of milliseconds and a few MB; :func:`shared` keeps one of each
settings for the process. The graphs are not re-entrant, so each comes with a lock.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
from typing import Any, Callable, Dict, Hashable, Iterator, Optional, Tuple

import numpy as np

#: Points of MediaPipe's face mesh without the iris refinement.
MESH_POINTS = 468
#: Side in pixels of the square the landmark model and the full-range detector see.
MODEL_INPUT = 192

# MediaPipe's FaceLandmarkCpu subgraph with the region as an input (its solutions API only runs it behind a
# detector) and the face-presence score as an output: the region is sampled into the model's 192 px input
# (black beyond the frame, as a crop would be), and the landmarks are projected back to the image.
_REGION_GRAPH = """
input_stream: "IMAGE:image"
input_stream: "ROI:roi"
output_stream: "LANDMARKS:landmarks"
output_stream: "PRESENCE:presence"
node {
  calculator: "ImageToTensorCalculator"
  input_stream: "IMAGE:image"
  input_stream: "NORM_RECT:roi"
  output_stream: "TENSORS:input_tensors"
  options { [mediapipe.ImageToTensorCalculatorOptions.ext] {
    output_tensor_width: 192 output_tensor_height: 192 output_tensor_float_range { min: 0 max: 1 }
    border_mode: BORDER_ZERO } }
}
node {
  calculator: "InferenceCalculator"
  input_stream: "TENSORS:input_tensors"
  output_stream: "TENSORS:output_tensors"
  options { [mediapipe.InferenceCalculatorOptions.ext] {
    model_path: "mediapipe/modules/face_landmark/face_landmark.tflite" delegate { xnnpack { num_threads: 1 } } } }
}
node {
  calculator: "SplitTensorVectorCalculator"
  input_stream: "output_tensors"
  output_stream: "landmark_tensors"
  output_stream: "presence_tensor"
  options { [mediapipe.SplitVectorCalculatorOptions.ext] { ranges { begin: 0 end: 1 } ranges { begin: 1 end: 2 } } }
}
node {
  calculator: "TensorsToFloatsCalculator"
  input_stream: "TENSORS:presence_tensor"
  output_stream: "FLOAT:presence"
  options { [mediapipe.TensorsToFloatsCalculatorOptions.ext] { activation: SIGMOID } }
}
node {
  calculator: "TensorsToLandmarksCalculator"
  input_stream: "TENSORS:landmark_tensors"
  output_stream: "NORM_LANDMARKS:region_landmarks"
  options { [mediapipe.TensorsToLandmarksCalculatorOptions.ext] {
    num_landmarks: 468 input_image_width: 192 input_image_height: 192 } }
}
node {
  calculator: "LandmarkProjectionCalculator"
  input_stream: "NORM_LANDMARKS:region_landmarks"
  input_stream: "NORM_RECT:roi"
  output_stream: "NORM_LANDMARKS:landmarks"
}
"""

# A serialised NormalizedLandmarkList is, per point, the tag and length of the message (0x0A, 15),
# then x, y, z as fixed32 fields (tags 0x0D, 0x15, 0x1D): 17 bytes. Reading it with numpy is ~25x
# faster than walking 468 protobuf objects in Python.
_POINT_RECORD = np.dtype([("tag", "u1"), ("size", "u1"), ("xt", "u1"), ("x", "<f4"), ("yt", "u1"), ("y", "<f4"),
                          ("zt", "u1"), ("z", "<f4")])
_POINT_TAGS = (0x0A, 15, 0x0D, 0x15, 0x1D)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence the C++ log lines MediaPipe prints from its graphs (keeps CLI errors one line); ``l2s -v``
    (the ``l2s`` logger at INFO) or ``L2S_DEBUG`` lets them through."""
    if os.environ.get("L2S_DEBUG", "") not in ("", "0") or logging.getLogger("l2s").isEnabledFor(logging.INFO):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class Graph:
    """A MediaPipe solution graph behind a lock, its native logging silenced.

    Args:
        solution: a ``mediapipe.python.solution_base.SolutionBase``.
    """

    def __init__(self, solution: Any):
        self.solution = solution
        self.lock = threading.Lock()

    def process(self, inputs: Any) -> Any:
        with self.lock, quiet_native_stderr():  # the graphs log from their C++ threads on start and first face
            return self.solution.process(inputs)

    def close(self) -> None:
        with self.lock:
            if self.solution is not None:
                with quiet_native_stderr():
                    self.solution.close()
                self.solution = None


_GRAPHS: Dict[Hashable, Graph] = {}
_GRAPHS_LOCK = threading.Lock()


def shared(key: Hashable, build: Callable[[], Any]) -> Graph:
    """The process's graph for ``key``, built by ``build()`` on first use."""
    with _GRAPHS_LOCK:
        graph = _GRAPHS.get(key)
        if graph is None or graph.solution is None:
            with quiet_native_stderr():
                graph = _GRAPHS[key] = Graph(build())
        return graph


@atexit.register
def close_all() -> None:
    """Close every shared graph (at exit: their threads must stop before the interpreter does)."""
    with _GRAPHS_LOCK:
        graphs = list(_GRAPHS.values())
        _GRAPHS.clear()
    for graph in graphs:
        graph.close()


def loaded() -> Tuple[Hashable, ...]:
    """Keys of the graphs built so far (for tests and start-up reports)."""
    with _GRAPHS_LOCK:
        return tuple(_GRAPHS)


def face_finder(min_confidence: float) -> Graph:
    """The full-range face detector; ``process(frame)`` returns MediaPipe's detections."""
    def build():
        from mediapipe.python.solutions import face_detection

        return face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_confidence)

    return shared(("finder", float(min_confidence)), build)


def static_mesh(min_confidence: float, min_presence: float) -> Graph:
    """Face mesh in static-image mode (detection and landmarks on every call), one face."""
    def build():
        from mediapipe.python.solutions import face_mesh

        return face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                                  min_detection_confidence=min_confidence, min_tracking_confidence=min_presence)

    return shared(("static_mesh", float(min_confidence), float(min_presence)), build)


class RegionLandmarker:
    """The landmark model on a region the caller gives (the graph :data:`_REGION_GRAPH`).

    It drives MediaPipe's ``CalculatorGraph`` directly: the solutions wrapper builds a named tuple
    type on every call, which costs as much as a tenth of the model itself.
    """

    def __init__(self):
        import mediapipe
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python import CalculatorGraph, resource_util

        # model paths in graphs are relative to the folder holding the mediapipe package
        resource_util.set_resource_dir(os.path.dirname(os.path.dirname(os.path.abspath(mediapipe.__file__))))
        config = text_format.Parse(_REGION_GRAPH, calculator_pb2.CalculatorGraphConfig())
        self._graph = CalculatorGraph(graph_config=config)
        self._outputs: Dict[str, Any] = {}
        for name in ("landmarks", "presence"):
            self._graph.observe_output_stream(name, self._keep, True)
        self._graph.start_run({})
        self._timestamp = 0

    def _keep(self, stream: str, packet: Any) -> None:
        self._outputs[stream] = packet

    def process(self, inputs: Tuple[np.ndarray, Any]) -> Tuple[Optional[Any], float]:
        """``(image, NormalizedRect)`` -> ``(NormalizedLandmarkList or None, face-presence probability)``."""
        from mediapipe.python import ImageFormat, packet_creator, packet_getter

        image, rect = inputs
        self._outputs.clear()
        self._timestamp += 1
        self._graph.add_packet_to_input_stream(
            "image", packet_creator.create_image_frame(data=image, image_format=ImageFormat.SRGB).at(self._timestamp))
        self._graph.add_packet_to_input_stream("roi", packet_creator.create_proto(rect).at(self._timestamp))
        self._graph.wait_until_idle()
        marks, presence = self._outputs.get("landmarks"), self._outputs.get("presence")
        if marks is None or marks.is_empty() or presence is None or presence.is_empty():
            return None, 0.0
        return packet_getter.get_proto(marks), float(packet_getter.get_float(presence))

    def close(self) -> None:
        self._graph.close()


def region_landmarker() -> Graph:
    """The landmark model on a given region: ``process((rgb, NormalizedRect))`` returns the 468 landmarks
    (normalised to the image, or None) and the model's face-presence probability."""
    return shared(("region",), RegionLandmarker)


def normalized_rect(cx: float, cy: float, width: float, height: float, rotation: float) -> Any:
    """A MediaPipe ``NormalizedRect`` (centre and size as fractions of the image, rotation in radians)."""
    from mediapipe.framework.formats import rect_pb2

    return rect_pb2.NormalizedRect(x_center=cx, y_center=cy, width=width, height=height, rotation=rotation)


def landmark_array(landmarks: Any, num_points: Optional[int] = None) -> np.ndarray:
    """``(N, 2)`` float64 normalised x, y of a ``NormalizedLandmarkList``."""
    data = landmarks.SerializeToString()
    n = len(data) // _POINT_RECORD.itemsize
    if n * _POINT_RECORD.itemsize == len(data) and (num_points is None or n == num_points):
        rec = np.frombuffer(data, dtype=_POINT_RECORD)
        if all(np.all(rec[name] == tag) for name, tag in zip(("tag", "size", "xt", "yt", "zt"), _POINT_TAGS)):
            return np.stack([rec["x"], rec["y"]], axis=1).astype(np.float64)
    # a point with a coordinate of exactly 0 (omitted on the wire) or extra fields: the slow, general way
    return np.array([(p.x, p.y) for p in landmarks.landmark], dtype=np.float64)
