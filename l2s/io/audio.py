"""Audio files: read any wav/flac (soundfile) or media container (PyAV), resample, write wav/flac/ogg/mp3
atomically.

Everything returned is the contract waveform: ``(N,)`` float32 mono at
:data:`l2s.config.SAMPLE_RATE` (16 kHz). Multi-channel input is downmixed by
averaging the channels. :func:`read_audio` reads a file, :func:`write_wav` writes
16-bit PCM atomically, :func:`write_audio` writes wav, flac, ogg or mp3 by the suffix (atomically),
:func:`resample` converts rates (polyphase filtering).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from l2s.config import SAMPLE_RATE
from l2s.errors import InputError
from l2s.io.atomic import PathLike, atomic_write_bytes
from l2s.io.container import check_media_file, reason

# (wav (N,) float32 mono, sample rate, start time in seconds or None)
DecodedAudio = Tuple[np.ndarray, int, Optional[float]]

# Longest encoder end padding we remove (an AAC frame is 1024 samples, some encoders use 2048).
_MAX_END_PADDING = 2048

__all__ = ["read_audio", "write_wav", "write_audio", "encode_audio", "audio_format", "AUDIO_FORMATS", "resample",
           "decode_audio_stream"]


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling along the last axis (scipy's ``resample_poly``, Kaiser window).

    Args:
        wav: ``(..., N)`` samples.
        orig_sr: rate of ``wav`` in Hz.
        target_sr: wanted rate in Hz.

    Returns:
        ``(..., ceil(N * target_sr / orig_sr))`` float32 (a float32 copy when the rates agree).
    """
    wav = np.asarray(wav, dtype=np.float32)
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    if orig_sr == target_sr:
        return wav.copy()
    from scipy.signal import resample_poly

    g = math.gcd(orig_sr, target_sr)
    return resample_poly(wav, target_sr // g, orig_sr // g, axis=-1).astype(np.float32, copy=False)


def _to_mono(wav: np.ndarray) -> np.ndarray:
    """``(N, C)`` (soundfile layout) -> ``(N,)`` by averaging the channels."""
    return wav.mean(axis=1) if wav.ndim == 2 else wav


def decode_audio_stream(container, stream, max_seconds: Optional[float] = None) -> DecodedAudio:
    """Decode one PyAV audio stream to mono float32 at its own rate.

    Args:
        container: an open PyAV input container.
        stream: one of ``container.streams.audio``.
        max_seconds: stop once at least this much audio is decoded (the result may be a little longer).

    Returns:
        ``(wav (N,), sample_rate, start_seconds)``; ``start_seconds`` is the
        presentation time of the first decoded sample (``None`` if unknown).
    """
    import av

    # Format-only conversion (rate and layout kept): planar float gives (C, n) arrays whatever the codec's format.
    converter = av.AudioResampler(format="fltp")
    chunks: List[np.ndarray] = []
    rate: Optional[int] = None
    start: Optional[float] = None
    decoded = 0
    for frame in container.decode(stream):
        if max_seconds is not None and rate is not None and decoded >= max_seconds * rate:
            break
        if rate is None:
            rate = frame.sample_rate
            start = float(frame.time) if frame.time is not None else None
        for out in converter.resample(frame):
            chunks.append(out.to_ndarray().mean(axis=0))
            decoded += chunks[-1].shape[0]
    for out in converter.resample(None):
        chunks.append(out.to_ndarray().mean(axis=0))
    if rate is None:
        return np.zeros(0, np.float32), stream.sample_rate or SAMPLE_RATE, None
    wav = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    return _drop_end_padding(wav, rate, start, stream), rate, start


def _drop_end_padding(wav: np.ndarray, rate: int, start: Optional[float], stream) -> np.ndarray:
    """Cut the encoder's end padding (AAC pads its last frame to 1024 samples), which FFmpeg decodes.

    The container's declared stream end says where the real audio stops; it is trusted only
    when the excess is padding-sized, since some demuxers merely estimate durations.
    """
    if stream.duration is None or stream.time_base is None or start is None:
        return wav
    begin = stream.start_time if stream.start_time is not None else 0
    declared = int(round((float((begin + stream.duration) * stream.time_base) - start) * rate))
    excess = wav.shape[0] - declared
    if 0 < excess <= _MAX_END_PADDING:
        return wav[:declared]
    return wav


def _read_with_pyav(path: Path) -> Tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise InputError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            stream.thread_type = "AUTO"
            wav, sr, _ = decode_audio_stream(container, stream)
    except av.FFmpegError as exc:
        raise InputError(f"{path}: not a readable audio file ({reason(exc)})") from exc
    if wav.size == 0:
        raise InputError(f"{path}: no decodable audio samples")
    return wav, sr


def read_audio(path: PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file (or the audio track of a video) as mono float32 at ``sample_rate``.

    wav/flac/ogg go through soundfile; anything soundfile cannot open (mp4, m4a,
    mp3 on old libsndfile, mkv...) is decoded with PyAV.

    Args:
        path: the file.
        sample_rate: output rate in Hz (the contract rate by default).

    Returns:
        ``(N,)`` float32 in [-1, 1].

    Raises:
        InputError: missing, empty, unreadable file, or no audio in it.
    """
    import soundfile as sf

    p = check_media_file(path, "audio")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
        wav = _to_mono(data)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        wav, sr = _read_with_pyav(p)
    return resample(wav, sr, sample_rate)


#: Audio file types l2s writes, by suffix: soundfile's (format, subtype). MP3 needs libsndfile >= 1.1.
AUDIO_FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}


def _mono_samples(wav) -> np.ndarray:
    if hasattr(wav, "detach"):  # torch tensor, without importing torch here
        wav = wav.detach().cpu().numpy()
    data = np.asarray(wav, dtype=np.float32)
    if data.ndim == 2 and 1 in data.shape:
        data = data.reshape(-1)
    if data.ndim != 1:
        raise ValueError(f"expected a mono waveform (N,), got shape {data.shape}")
    return np.clip(np.nan_to_num(data), -1.0, 1.0)


def audio_format(path: PathLike) -> Tuple[str, str]:
    """soundfile's ``(format, subtype)`` for an output named ``path``.

    Raises:
        InputError: a suffix l2s does not write, or MP3 on a libsndfile without it.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in AUDIO_FORMATS:
        raise InputError(f"{path}: cannot write {suffix or 'a file without a suffix'} audio: "
                         f"use one of {', '.join(AUDIO_FORMATS)}")
    fmt, subtype = AUDIO_FORMATS[suffix]
    import soundfile as sf

    if fmt not in sf.available_formats():
        raise InputError(f"{path}: this libsndfile ({sf.__libsndfile_version__}) cannot write {fmt}; use .wav or .flac")
    return fmt, subtype


def encode_audio(wav, sample_rate: int, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    """A mono waveform as the bytes of an audio file (values beyond [-1, 1] are clipped)."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, _mono_samples(wav), int(sample_rate), format=fmt, subtype=subtype)
    return buffer.getvalue()


def write_audio(path: PathLike, wav, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a mono waveform atomically, as the file type its suffix names (:data:`AUDIO_FORMATS`).

    Raises:
        InputError: an unsupported suffix.
        OutputError: the file cannot be written (read-only, full disk, no permission).
    """
    fmt, subtype = audio_format(path)
    atomic_write_bytes(path, encode_audio(wav, sample_rate, fmt, subtype))


def write_wav(path: PathLike, wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a mono waveform as 16-bit PCM wav, atomically (temp file, then rename).

    Args:
        path: destination; its folder is created if needed.
        wav: ``(N,)`` (or ``(1, N)`` / ``(N, 1)``) float samples; values beyond [-1, 1] are clipped.
            A torch tensor is accepted too.
        sample_rate: rate written in the header, in Hz.

    Raises:
        OutputError: the file cannot be written (read-only, full disk, no permission).
    """
    # Encoded in memory first: libsndfile reports a full disk as "System error", Python's own write
    # gives the errno (no space, read-only, quota), which the CLI reports against the output.
    atomic_write_bytes(path, encode_audio(wav, sample_rate))
