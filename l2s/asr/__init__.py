"""ASR used for evaluation (Whisper), loadable offline from registry packages.

See :mod:`l2s.asr.whisper`.
"""
