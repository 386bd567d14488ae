"""The course's tokenizer: a word-level vocabulary trained with the ``tokenizers`` library on the French
and English captions of the shapes dataset, wrapped as a transformers ``PreTrainedTokenizerFast``.

Trained once and shipped in ``data/tokenizer/`` (``python -m course.tokenizer --ship``), so nothing is ever
downloaded: ``CLIPTokenizer.from_pretrained(<hub name>)`` offline can silently return a broken tokenizer.

Text is lower-cased and accents are kept (« étoile » and « etoile » differ); words and punctuation are
split, so « d'un » → « d », « ' », « un ». A sequence is ``<bos> words… <eos> <pad>…`` (CLIP's layout);
a word never seen in training becomes ``<unk>``.
"""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path

import numpy as np

from course.paths import data_dir

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")  # ids 0, 1, 2, 3
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
MAX_LENGTH = 32  # tokens, <bos> and <eos> included
DIRNAME = "tokenizer"


def training_corpus(n_scenes: int = 20_000, seed: int = 0) -> list[str]:
    """Every phrasing, in both languages, of n random scenes of every split (the vocabulary must cover held-out words)."""
    from course.captions import caption_variants
    from course.scenes import sample_scene

    rng = np.random.default_rng(seed)
    texts: list[str] = []
    for _ in range(n_scenes):
        scene = sample_scene(rng, "all")
        for lang in ("en", "fr"):
            texts.extend(caption_variants(scene, lang))
    return texts


def train_tokenizer(texts: list[str]):
    """Build the word-level tokenizer (a ``tokenizers.Tokenizer``) with CLIP's <bos> … <eos> template."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS), min_frequency=1))
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>", special_tokens=[("<bos>", BOS_ID), ("<eos>", EOS_ID)])
    return tok


def wrap(tok):
    """The ``tokenizers.Tokenizer`` as a transformers fast tokenizer with its special tokens declared."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=MAX_LENGTH,
        padding_side="right",
    )


def save(path: Path | None = None) -> Path:
    path = path or data_dir() / DIRNAME
    wrap(train_tokenizer(training_corpus())).save_pretrained(str(path))
    return path


@functools.lru_cache(maxsize=1)
def load_tokenizer(path: str | None = None):
    """The shipped tokenizer (transformers ``PreTrainedTokenizerFast``), read from ``data/tokenizer``."""
    from transformers import PreTrainedTokenizerFast

    folder = Path(path) if path else data_dir() / DIRNAME
    if not (folder / "tokenizer.json").exists():
        raise FileNotFoundError(f"{folder}/tokenizer.json is missing: build it with `python -m course.tokenizer --ship`")
    tok = PreTrainedTokenizerFast.from_pretrained(str(folder))
    assert tok.pad_token_id == PAD_ID and tok.eos_token_id == EOS_ID, "unexpected special token ids"
    return tok


@functools.lru_cache(maxsize=1)
def backend(path: str | None = None):
    """The shipped tokenizer's ``tokenizers.Tokenizer`` alone: what :func:`encode` needs, without importing
    transformers (≈ 0.4 s of a cold start); the same ids as :func:`load_tokenizer` (tested)."""
    from tokenizers import Tokenizer

    folder = Path(path) if path else data_dir() / DIRNAME
    if not (folder / "tokenizer.json").exists():
        raise FileNotFoundError(f"{folder}/tokenizer.json is missing: build it with `python -m course.tokenizer --ship`")
    return Tokenizer.from_file(str(folder / "tokenizer.json"))


def vocab_size() -> int:
    return backend().get_vocab_size(with_added_tokens=False)


def encode(prompts: list[str] | str, max_length: int = MAX_LENGTH, pad_to_longest: bool = False, allow_empty: bool = False, tokenizer=None):
    """Token ids (B, max_length) and attention mask (B, max_length) for prompts in French or English.

    An empty prompt is a ``ValueError`` (unless ``allow_empty``: the empty prompt "" is the
    unconditional input ∅ of classifier-free guidance, <bos> <eos>); a prompt too long is truncated
    with a warning (its <eos> kept); unknown words become <unk> (``unknown_words`` lists them).
    ``pad_to_longest`` pads only to the batch's longest prompt (cheaper; same results, since padded
    positions are masked and positions are absolute). ``tokenizer``: another ``tokenizers.Tokenizer`` than the shipped
    one (e.g. with a new word, lesson 11).
    """
    import torch

    if isinstance(prompts, str):
        prompts = [prompts]
    if not prompts:
        raise ValueError("give at least one prompt")
    for p in prompts:
        if not isinstance(p, str) or (not p.strip() and not allow_empty):
            raise ValueError(f"prompts must be non-empty strings, got {p!r}")
    ids = [e.ids for e in (tokenizer or backend()).encode_batch(prompts)]
    if pad_to_longest:
        max_length = min(max_length, max(len(i) for i in ids))
    too_long = [p for p, i in zip(prompts, ids) if len(i) > max_length]
    if too_long:
        warnings.warn(f"{len(too_long)} prompt(s) longer than {max_length} tokens were truncated, e.g. {too_long[0][:60]!r}…", stacklevel=2)
    out = torch.full((len(ids), max_length), PAD_ID, dtype=torch.long)
    mask = torch.zeros(len(ids), max_length, dtype=torch.long)
    for row, seq in enumerate(ids):
        seq = seq[: max_length - 1] + [EOS_ID] if len(seq) > max_length else seq
        out[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return out, mask


def unknown_words(prompt: str) -> list[str]:
    """The words of ``prompt`` that the tokenizer maps to <unk>."""
    tok = backend()
    pieces = tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(prompt))
    return [word for word, _ in pieces if tok.token_to_id(word) in (None, UNK_ID)]


def ship_folder(built: Path, destination: Path) -> None:
    """Put the folder ``built`` in place of ``destination`` by renames (the previous one is kept until the new one is in place)."""
    import shutil

    staged, previous = destination.with_name(destination.name + ".new"), destination.with_name(destination.name + ".old")
    shutil.rmtree(staged, ignore_errors=True)
    shutil.rmtree(previous, ignore_errors=True)
    shutil.copytree(built, staged)
    if destination.exists():
        destination.rename(previous)
    staged.rename(destination)
    shutil.rmtree(previous, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m course.tokenizer``: build the tokenizer into runs/tokenizer; ``--ship`` replaces data/tokenizer."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m course.tokenizer", description="Build the word-level tokenizer from the captions.")
    parser.add_argument("--out", type=Path, default=Path("runs/tokenizer"), help="where to build it (default runs/tokenizer)")
    parser.add_argument("--ship", action="store_true",
                        help=f"then replace data/{DIRNAME} (CLIP and the U-Net were trained on its ids: retrain them after)")
    args = parser.parse_args(argv)
    try:
        folder = save(args.out)
        tok = load_tokenizer.__wrapped__(str(folder))
        print(f"saved {folder}: {tok.vocab_size} tokens")
        if args.ship:
            ship_folder(folder, data_dir() / DIRNAME)
            load_tokenizer.cache_clear()
            print(f"shipped {folder} to {data_dir() / DIRNAME}; CLIP and the U-Net read its ids: if they changed, retrain both "
                  "(python -m course.clip_train train --ship, then python -m course.ldm train --ship)")
        else:
            print(f"data/{DIRNAME} is unchanged. To ship it: python -m course.tokenizer --ship")
    except OSError as err:
        sys.exit(f"error: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
