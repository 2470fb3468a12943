"""Tokenizers of the VSR model's output vocabulary.

Every vocabulary follows Auto-AVSR's layout: id 0 is the CTC blank, id 1 is ``<unk>``, the last id is
``<eos>`` (also used as sos), the real tokens lie in between.

* :class:`CharTokenizer`: lower-case letters, space and apostrophe (GRID-style corpora).
* :class:`SentencePieceTokenizer`: Auto-AVSR's SentencePiece model plus its units file. Model ids are the
  1-based line numbers of the units file, not SentencePiece ids (the units file has pieces SentencePiece
  lacks). Auto-AVSR's text is upper case; with ``upper_case_model`` (the default) the tokenizer upper-cases
  what it encodes and lower-cases what it decodes, so the rest of l2s sees the lower-case text contract.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Union

from l2s.errors import ModelError

BLANK = "<blank>"
UNK = "<unk>"
EOS = "<eos>"
SPM_SPACE = "\u2581"
SPM_MODEL_FILE = "tokenizer.model"
SPM_UNITS_FILE = "tokenizer.units.txt"


class Tokenizer:
    """Text <-> token ids over ``token_list`` (blank first, ``<unk>`` second, ``<eos>`` last)."""

    kind = "base"

    def __init__(self, token_list: Sequence[str]) -> None:
        if len(token_list) < 4 or token_list[0] != BLANK or token_list[1] != UNK or token_list[-1] != EOS:
            raise ModelError("a token list must start with <blank>, <unk> and end with <eos>")
        self.token_list: List[str] = list(token_list)
        self._index: Dict[str, int] = {tok: i for i, tok in enumerate(self.token_list)}

    @property
    def vocab_size(self) -> int:
        return len(self.token_list)

    @property
    def blank_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def sos_id(self) -> int:
        return len(self.token_list) - 1

    @property
    def eos_id(self) -> int:
        return len(self.token_list) - 1

    def encode(self, text: str) -> List[int]:
        """Text -> model token ids (no sos/eos)."""
        return [self._index.get(piece, self.unk_id) for piece in self.pieces(text)]

    def pieces(self, text: str) -> List[str]:
        raise NotImplementedError

    def tokens(self, ids: Iterable[int]) -> List[str]:
        """Token strings of ``ids``, blank and sos/eos left out."""
        return [self.token_list[i] for i in map(int, ids) if i not in (self.blank_id, self.eos_id)]

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids -> text (blank and sos/eos ignored)."""
        raise NotImplementedError


class CharTokenizer(Tokenizer):
    """Characters: ``<blank> <unk> ' ' "'" a..z <eos>`` (31 tokens). Input is lower-cased, spaces collapsed."""

    kind = "char"
    CHARS = " '" + string.ascii_lowercase

    def __init__(self) -> None:
        super().__init__([BLANK, UNK, *self.CHARS, EOS])

    def pieces(self, text: str) -> List[str]:
        return list(" ".join(text.lower().split()))

    def decode(self, ids: Iterable[int]) -> str:
        return "".join("" if tok == UNK else tok for tok in self.tokens(ids)).strip()


def read_units(path: Union[str, Path]) -> List[str]:
    """Tokens of an Auto-AVSR units file (``TOKEN ID`` per line, ids 1, 2, 3...)."""
    units = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if len(fields) != 2 or fields[1] != str(number):
            raise ModelError(f"{path}:{number}: expected 'TOKEN {number}', got {line!r}")
        units.append(fields[0])
    return units


class SentencePieceTokenizer(Tokenizer):
    """Auto-AVSR's SentencePiece tokenizer (``unigram5000.model`` + ``unigram5000_units.txt``).

    Args:
        model_path: the SentencePiece model file.
        units_path: the units file (``TOKEN ID`` per line); token id = line number.
        upper_case_model: upper-case input before encoding and lower-case decoded text.
    """

    kind = "sentencepiece"

    def __init__(self, model_path: Union[str, Path], units_path: Union[str, Path],
                 upper_case_model: bool = True) -> None:
        try:
            import sentencepiece
        except ImportError:  # pragma: no cover - a core dependency
            raise ModelError("sentencepiece is not installed") from None
        self.model_path, self.units_path = Path(model_path), Path(units_path)
        units = read_units(units_path)
        if not units or units[0] != UNK:
            raise ModelError(f"{units_path}: the first unit must be {UNK}")
        super().__init__([BLANK, *units, EOS])
        try:
            self._spm = sentencepiece.SentencePieceProcessor(model_file=str(model_path))
        except (OSError, RuntimeError) as exc:
            raise ModelError(f"{model_path}: not a SentencePiece model ({exc})") from None
        self.upper_case_model = upper_case_model

    def pieces(self, text: str) -> List[str]:
        return self._spm.encode(text.upper() if self.upper_case_model else text, out_type=str)

    def decode(self, ids: Iterable[int]) -> str:
        text = "".join(self.tokens(ids)).replace(SPM_SPACE, " ").strip()
        return text.lower() if self.upper_case_model else text


def tokenizer_files(tokenizer: Tokenizer) -> Dict[str, Path]:
    """Files to store beside the weights (``extra_files`` of :func:`l2s.hub.save_model_dir`)."""
    if isinstance(tokenizer, SentencePieceTokenizer):
        return {SPM_MODEL_FILE: tokenizer.model_path, SPM_UNITS_FILE: tokenizer.units_path}
    return {}


def load_tokenizer(kind: str, model_dir: Optional[Union[str, Path]] = None,
                   files: Optional[Mapping[str, Union[str, Path]]] = None) -> Optional[Tokenizer]:
    """The tokenizer a checkpoint was saved with.

    Args:
        kind: ``"char"`` or ``"sentencepiece"`` (``VSRConfig.tokenizer``).
        model_dir: checkpoint directory holding the tokenizer files.
        files: explicit ``{name: path}`` instead of ``model_dir``.

    Returns:
        The tokenizer, or None for a SentencePiece model whose files are absent (ids only).
    """
    if kind == CharTokenizer.kind:
        return CharTokenizer()
    if kind != SentencePieceTokenizer.kind:
        raise ModelError(f"unknown tokenizer kind {kind!r}")
    paths = dict(files or {})
    if model_dir is not None:
        paths.setdefault(SPM_MODEL_FILE, Path(model_dir) / SPM_MODEL_FILE)
        paths.setdefault(SPM_UNITS_FILE, Path(model_dir) / SPM_UNITS_FILE)
    model, units = paths.get(SPM_MODEL_FILE), paths.get(SPM_UNITS_FILE)
    if model is None or units is None or not Path(model).is_file() or not Path(units).is_file():
        return None
    return SentencePieceTokenizer(model, units)
