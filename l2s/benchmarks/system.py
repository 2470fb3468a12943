"""What a benchmark records about the machine and the process: load, memory, threads, versions."""

from __future__ import annotations

import os
import platform
import resource
from typing import Any, Dict, Optional

#: Environment variables that set the thread pools of torch, OpenMP and BLAS libraries.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def load_average() -> Optional[Dict[str, float]]:
    """The machine's 1, 5 and 15 minute load averages (runnable processes), or None where unknown."""
    try:
        one, five, fifteen = os.getloadavg()
    except (AttributeError, OSError):
        return None
    return {"1min": round(one, 2), "5min": round(five, 2), "15min": round(fifteen, 2)}


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (Linux reports ``ru_maxrss`` in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def os_threads() -> Optional[int]:
    """Threads of this process now (decoder, MediaPipe's graph and BLAS pools included), where Linux says."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def thread_environment(threads: int) -> Dict[str, str]:
    """``os.environ`` with every thread-pool variable set to ``threads``."""
    return {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}


def limit_threads(threads: int) -> None:
    """Use ``threads`` threads in torch and OpenCV (call before the work to be timed)."""
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def machine() -> Dict[str, Any]:
    """The CPU, its core count and the library versions the timings depend on."""
    import torch

    cpu = platform.processor() or None
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "machine": platform.machine(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
