"""The ``guide`` stage: networks whose loss toward a text steers the generator (:mod:`l2s.models.guide.base`).

* :mod:`l2s.models.guide.ctc`: l2s's character CTC conformer over noisy mels (``ctc``).
* :mod:`l2s.models.guide.lipvoicer`: LipVoicer's Efficient Conformer CTC guide (``lipvoicer``).
* :mod:`l2s.models.guide.whisper`: openai-whisper's likelihood of the text, untrained (``whisper``).
"""

from l2s.models.guide.base import CHAR_TOKENIZER, Guide, TokenGuide

__all__ = ["Guide", "TokenGuide", "CHAR_TOKENIZER"]
