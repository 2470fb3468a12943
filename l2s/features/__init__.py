"""Signal features of the contract: the mel spectrogram and F0."""

from l2s.features.mel import MelSpectrogram, denormalize_mel, normalize_log_mel, peak_normalize, wav_to_mel

__all__ = ["MelSpectrogram", "denormalize_mel", "normalize_log_mel", "peak_normalize", "wav_to_mel"]
