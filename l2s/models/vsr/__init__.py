"""The ``vsr`` stage: the lip reader (Auto-AVSR's architecture), its decoding and its checkpoint converter.

* :mod:`l2s.models.vsr.model`: :class:`VSRModel`, its config and presets, the ``auto-avsr`` architecture.
* :mod:`l2s.models.vsr.frontend`, :mod:`~l2s.models.vsr.conformer`, :mod:`~l2s.models.vsr.attention`,
  :mod:`~l2s.models.vsr.transformer_decoder`: the network's parts.
* :mod:`l2s.models.vsr.loss`: the hybrid CTC/attention loss; :mod:`~l2s.models.vsr.roi_transforms`: input
  normalisation and training augmentation.
* :mod:`l2s.models.vsr.decoding`: greedy CTC and joint CTC/attention beam search;
  :mod:`~l2s.models.vsr.ngram_lm`: the token n-gram language model that can join it.
* :mod:`l2s.models.vsr.convert`: Auto-AVSR checkpoints -> l2s model directories.
"""

from l2s.models.vsr.model import (VSR_BASE, VSR_MICRO, VSR_PRESETS, VSR_TINY, TranscriptionResult, VSRConfig,
                                  VSRModel, build_vsr, check_lm, load_vsr, save_vsr)

__all__ = ["VSRModel", "VSRConfig", "VSR_BASE", "VSR_TINY", "VSR_MICRO", "VSR_PRESETS", "TranscriptionResult",
           "build_vsr", "load_vsr", "save_vsr", "check_lm"]
