"""Real output faults for tests: a read-only folder and a nearly full disk.

As root (which ignores permission bits) both are tmpfs mounts: ``ro`` for the read-only folder,
a few kilobytes for the full disk. Elsewhere the read-only folder is ``chmod 555`` and the full disk
is not available (the tests that need it skip; an injected ``ENOSPC`` covers the code path).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest


def _mount_tmpfs(folder: Path, options: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    return proc.returncode == 0


def _unmount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], capture_output=True, check=False)


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[Path]:
    """``folder`` (created) that no file can be created in, for as long as the block runs."""
    folder.mkdir(parents=True, exist_ok=True)
    if _mount_tmpfs(folder, "ro,size=64k"):
        try:
            yield folder
        finally:
            _unmount(folder)
        return
    if os.geteuid() == 0:
        pytest.skip("running as root without mount: permission bits cannot make a folder read-only")
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


@contextlib.contextmanager
def small_disk(folder: Path, size_bytes: int) -> Iterator[Path]:
    """``folder`` (created) on a tmpfs of ``size_bytes``, or skip the test where none can be mounted."""
    folder.mkdir(parents=True, exist_ok=True)
    if not _mount_tmpfs(folder, f"size={size_bytes}"):
        pytest.skip("a small tmpfs needs root and mount")
    try:
        yield folder
    finally:
        _unmount(folder)
