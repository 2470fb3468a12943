"""Vocoders: contract mel ``(B, 80, T)`` to 16 kHz waveform ``(B, T * 160)``.

``get_vocoder(name_or_path)`` gives a ready vocoder; ``render`` runs one on a mel of
either space, in overlapping chunks when long; ``copy_synthesis`` resynthesises audio.
Each architecture module (:mod:`~l2s.vocoder.hifigan`, :mod:`~l2s.vocoder.vocos`,
:mod:`~l2s.vocoder.griffinlim`) declares its member of the vocoder table (:mod:`l2s.arch`).
"""

from l2s.vocoder.base import (MEL_LOG, MEL_NORM, WHOLE, ChunkOptions, Vocoder, convert_mel_space, copy_synthesis,
                              render)
from l2s.vocoder.registry import available_vocoders, default_vocoder, get_vocoder, save_vocoder

__all__ = [
    "MEL_LOG", "MEL_NORM", "WHOLE", "ChunkOptions", "Vocoder", "convert_mel_space", "copy_synthesis", "render",
    "available_vocoders", "default_vocoder", "get_vocoder", "save_vocoder",
]
