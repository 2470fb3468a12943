"""Text side of lip reading: tokenizers (characters for GRID-style corpora, SentencePiece for LRS-style)."""

from l2s.text.tokenizer import (CharTokenizer, SentencePieceTokenizer, Tokenizer, load_tokenizer,
                                tokenizer_files)

__all__ = ["CharTokenizer", "SentencePieceTokenizer", "Tokenizer", "load_tokenizer", "tokenizer_files"]
