"""Textual inversion (Gal et al. 2023, eq. 2; slides « Inversion et Édition »): a new word learned as one new row of
the frozen CLIP token table, everything else frozen.

    v* = argmin_v  E_{z, y, ε, t} ‖ε − ε_θ(z_t, t, c_θ(y; v))‖²      (eq. 2: only v, the new token's embedding, moves)

The tokenizer gets the new token as an added token (matched whole before the words are split: « <lune> » is one
token, not « < », « lune », « > »), with id V, the table's length; the text encoder reads the table [W; v] (V + 1, D).
The V rows of W are not parameters of the model, so no step can move them. (The diffusers training script instead
trains the whole table and puts every other row back after each step, :func:`restore_rows`: lesson 11's exercise.)

Saved as diffusers saves one: a safetensors file ``{token: v (1, D)}``, which ``load_textual_inversion`` of the
exported ``StableDiffusionPipeline`` reads (tests/test_concept.py).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course.tokenizer import backend, encode

CHECKPOINT = "concept_ti.safetensors"


class TokenError(ValueError):
    """A new token that cannot be added (empty, with spaces, already a word) or a file that is not an embedding."""


def check_new_token(token: str) -> str:
    """``token`` if it can be a new word: a non-empty string without spaces that the tokenizer does not know yet."""
    if not isinstance(token, str) or not token.strip():
        raise TokenError(f"the new token must be a non-empty string, got {token!r}")
    if any(ch.isspace() for ch in token):
        raise TokenError(f"the new token must be one word, without spaces, got {token!r}")
    tok = backend()
    normalized = tok.normalizer.normalize_str(token)
    if tok.token_to_id(normalized) is not None:
        raise TokenError(f"{token!r} is already a word of the vocabulary (id {tok.token_to_id(normalized)}): choose a new one, e.g. <{normalized.strip('<>')}>")
    return token


@functools.lru_cache(maxsize=8)
def tokenizer_with(token: str):
    """A copy of the shipped tokenizer (``tokenizers.Tokenizer``) with ``token`` added, id V; every other id unchanged."""
    from tokenizers import AddedToken, Tokenizer

    check_new_token(token)
    tok = Tokenizer.from_str(backend().to_str())
    tok.add_tokens([AddedToken(token, single_word=False, lstrip=False, rstrip=False, normalized=True)])  # as transformers' add_tokens
    return tok


def token_id(token: str) -> int:
    return tokenizer_with(token).token_to_id(token)


def restore_rows(table: torch.Tensor, original: torch.Tensor, trained_ids: list[int]) -> torch.Tensor:
    """Put back every row of ``table`` (V', D) but ``trained_ids`` from ``original``, in place (the diffusers script's
    way of training only the new rows of a whole trainable table; weight decay would move the others)."""
    keep = torch.ones(table.shape[0], dtype=torch.bool, device=table.device)
    keep[list(trained_ids)] = False
    with torch.no_grad():
        table[keep] = original[keep].to(table)
    return table


class TextualInversion(nn.Module):
    """The frozen text encoder and one trained vector v for ``token``, initialised from ``init`` (a known word, or a vector)."""

    def __init__(self, text: nn.Module, token: str, init: str | torch.Tensor):
        super().__init__()
        self.token, self.tokenizer = token, tokenizer_with(token)
        self.text = text.requires_grad_(False)
        table = text.embeddings.token_embedding.weight
        if table.shape[0] != self.tokenizer.get_vocab_size(with_added_tokens=False):
            raise TokenError(f"the text encoder's table has {table.shape[0]} rows, the tokenizer {self.tokenizer.get_vocab_size(False)} words")
        if isinstance(init, str):
            word_id = backend().token_to_id(backend().normalizer.normalize_str(init))
            if word_id is None:
                raise TokenError(f"the initialiser {init!r} is not a word of the vocabulary: choose a known word, e.g. 'circle'")
            init = table[word_id]
        if init.shape[-1] != table.shape[1]:
            raise TokenError(f"the initial vector has {init.shape[-1]} dimensions, the table {table.shape[1]}")
        self.vector = nn.Parameter(init.detach().reshape(1, -1).clone())  # v (1, D): the only trained weight
        self.token_id = table.shape[0]  # V: the row after the table's

    def token_weight(self) -> torch.Tensor:
        """The table [W; v] (V + 1, D) the text encoder reads."""
        return torch.cat([self.text.embeddings.token_embedding.weight, self.vector])

    def text_states(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token states (B, 32, D) as :func:`course.shipped.encoder_states` gives them, the new token included; gradients reach v."""
        ids, _ = encode(prompts, allow_empty=True, tokenizer=self.tokenizer)
        ids = ids.to(self.vector.device)
        hidden, _, _ = self.text(ids, token_weight=self.token_weight())
        return hidden, torch.ones(ids.shape, dtype=torch.bool, device=ids.device)

    def uses_token(self, prompt: str) -> bool:
        return self.token_id in self.tokenizer.encode(prompt).ids


def nearest_words(vector: torch.Tensor, table: torch.Tensor, k: int = 3) -> list[tuple[str, float]]:
    """The k words of the shipped vocabulary whose embedding rows are closest to ``vector`` (cosine similarity)."""
    sims = F.cosine_similarity(table, vector.reshape(1, -1).to(table), dim=1)
    words = {i: w for w, i in backend().get_vocab().items()}
    top = sims.topk(k)
    return [(words[i], round(s, 3)) for s, i in zip(top.values.tolist(), top.indices.tolist())]


def embedding_tensors(token: str, vector: torch.Tensor) -> dict[str, torch.Tensor]:
    """The diffusers layout of a learned embedding, what the file holds: ``{token: v (1, D)}``."""
    return {token: vector.detach().reshape(1, -1).cpu().contiguous()}


def read_embedding(tensors: dict[str, torch.Tensor]) -> tuple[str, torch.Tensor]:
    """(token, v (1, D)) from a file's tensors, in diffusers' layout (one key, the token)."""
    if len(tensors) != 1:
        raise TokenError(f"an embedding file holds one tensor named after its token, found {len(tensors)}: {', '.join(list(tensors)[:4])}")
    (token, vector), = tensors.items()
    return token, vector.reshape(1, -1)


def load_textual_inversion(path: str | Path | None = None, text: nn.Module | None = None) -> TextualInversion:
    """The shipped (or ``path``'s) learned word on the shipped (or ``text``) encoder, checksum verified."""
    from course import checkpoints
    from course.paths import data_dir
    from course.shipped import load_clip

    path = Path(path) if path else data_dir() / CHECKPOINT
    tensors, manifest = checkpoints.load(path)
    token, vector = read_embedding(tensors)
    model = TextualInversion(text if text is not None else load_clip().text, token, vector)
    model.manifest = manifest
    return model.eval()
