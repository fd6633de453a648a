"""Sentences: strict Windows-1252/Latin-1 decoding, Kim's tokeniser, the run's vocabulary,
pretrained word vectors.

Token ids: 0 = padding (``PAD``), 1 = unknown word (``UNK``), then the vocabulary's words by
decreasing training count (ties alphabetical). A sentence is encoded as int32 ``(max_len,)``
ids, zero-padded (mask = ``ids > 0``), longer sentences truncated to ``max_len``.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import tempfile

import numpy as np

PAD, UNK = 0, 1
SPECIALS = ("<pad>", "<unk>")
FORMAT = "cnnlab-vocabulary-1"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_str(s: str) -> list[str]:
  """Kim (2014)'s ``clean_str`` (his ``process_data.py``, lower-cased) as a token list.

  One deviation: Kim's replacement strings ``" \\( "`` / ``" \\) "`` / ``" \\? "`` keep the
  backslash (Python's ``re`` leaves unknown escapes alone), so his tokens are ``\\(``, ``\\)``,
  ``\\?``; here they are ``(``, ``)``, ``?`` (the same token boundaries and counts).
  """
  s = re.sub(r"[^A-Za-z0-9(),!?'`]", " ", s)
  for suffix in ("'s", "'ve", "n't", "'re", "'d", "'ll"):
    s = s.replace(suffix, " " + suffix)
  s = re.sub(r"([,!()?])", r" \1 ", s)
  return s.lower().split()


def decode_lines(raw: bytes, path) -> list[str]:
  """The lines of Windows-1252 (Latin-1 superset) text ``raw`` read from ``path``.

  Raises ValueError naming ``path`` and the line for: a byte undefined in Windows-1252, control
  characters (NUL ...), a file that is valid UTF-8 with non-ASCII characters (the wrong
  encoding: re-encode it to Latin-1), an empty line, no lines at all.
  """
  def line_of(offset):
    return raw.count(b"\n", 0, offset) + 1

  if not raw.isascii():
    try:
      raw.decode("utf-8")
    except UnicodeDecodeError:
      pass
    else:
      raise ValueError(f"text file {path}: is UTF-8 with non-ASCII characters; expected "
                       "Windows-1252/Latin-1 (e.g. `iconv -f utf-8 -t latin1`)")
  try:
    text = raw.decode("cp1252")
  except UnicodeDecodeError as e:
    raise ValueError(f"text file {path}: byte 0x{raw[e.start]:02x} at offset {e.start} (line "
                     f"{line_of(e.start)}) is not Windows-1252/Latin-1 text") from None
  m = _CONTROL.search(text)
  if m:
    raise ValueError(f"text file {path}: control character {m.group()!r} at offset "
                     f"{m.start()} (line {line_of(m.start())}); expected one sentence per line")
  lines = text.split("\n")
  if lines and lines[-1] == "":
    lines.pop()
  lines = [line.rstrip("\r") for line in lines]
  if not lines:
    raise ValueError(f"text file {path}: empty; expected one sentence per line")
  for i, line in enumerate(lines):
    if not line.strip():
      raise ValueError(f"text file {path}: line {i + 1} is empty; expected one sentence per line")
  return lines


def _as_str(tokens) -> np.ndarray:
  """A token sequence (str, or bytes as TFDS returns them) as a numpy unicode array."""
  a = np.asarray(tokens, dtype=object)
  if a.size and isinstance(a.flat[0], bytes):
    return a.astype("S").astype("U")
  return a.astype("U") if a.size else np.zeros(0, "U1")


class Vocabulary:
  """``tokens`` (``SPECIALS`` first; id = position), the ``max_len`` sentences are padded to and
  ``built_from``: what it was built from (checked when a run resumes)."""

  def __init__(self, tokens, max_len: int, built_from: dict):
    self.tokens, self.max_len, self.built_from = tuple(tokens), int(max_len), dict(built_from)
    words = np.array(self.tokens[len(SPECIALS):], dtype="U")
    self._order = np.argsort(words, kind="stable")
    self._sorted = words[self._order]

  def __len__(self):
    return len(self.tokens)

  @classmethod
  def build(cls, sentences, min_count: int = 1, max_len: int = 0, built_from=None):
    """The words of ``sentences`` (token sequences) seen ``min_count`` times or more;
    ``max_len`` 0 = the longest of ``sentences``."""
    sentences = [_as_str(s) for s in sentences]
    flat = np.concatenate(sentences) if sentences else np.zeros(0, "U1")
    words, counts = np.unique(flat, return_counts=True)
    keep = counts >= min_count
    order = np.lexsort((words[keep], -counts[keep]))  # count desc, then alphabetical
    max_len = max_len or max((len(s) for s in sentences), default=1)
    return cls((*SPECIALS, *words[keep][order].tolist()), max_len, built_from or {})

  def encode(self, sentences) -> np.ndarray:
    """int32 ``(N, max_len)`` ids of ``sentences`` (unknown words -> ``UNK``, 0-padded)."""
    sentences = [_as_str(s) for s in sentences]
    lengths = np.array([len(s) for s in sentences], np.int64)
    out = np.zeros((len(sentences), self.max_len), np.int32)
    if not lengths.sum():
      return out
    flat = np.concatenate(sentences)
    pos = np.minimum(np.searchsorted(self._sorted, flat), max(len(self._sorted) - 1, 0))
    found = (self._sorted[pos] == flat) if len(self._sorted) else np.zeros(len(flat), bool)
    ids = np.where(found, self._order[pos] + len(SPECIALS), UNK) if len(self._sorted) else (
        np.full(len(flat), UNK))
    rows = np.repeat(np.arange(len(sentences)), lengths)
    cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    keep = cols < self.max_len
    out[rows[keep], cols[keep]] = ids[keep]
    return out

  def save(self, path) -> None:
    """Writes the vocabulary as JSON to ``path`` atomically (a temp file renamed over it)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, "max_len": self.max_len, "built_from": self.built_from,
           "tokens": list(self.tokens)}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
      json.dump(doc, f)
    os.replace(tmp, path)

  @classmethod
  def load(cls, path) -> "Vocabulary":
    try:
      doc = json.loads(pathlib.Path(path).read_text())
      if doc.get("format") != FORMAT or tuple(doc["tokens"][:len(SPECIALS)]) != SPECIALS:
        raise ValueError("not a cnnlab vocabulary")
      return cls(doc["tokens"], doc["max_len"], doc["built_from"])
    except (ValueError, KeyError, TypeError) as e:
      raise ValueError(f"vocabulary file {path}: unreadable ({e}); expected the JSON file a "
                       f"training run writes ({FORMAT})") from None


def word_vectors(path, vocab: Vocabulary, seed: int = 0, scale: float = 0.25):
  """``(float32 (len(vocab), D), found)`` initial embeddings from a word2vec-text or GloVe file.

  ``path``: UTF-8 text, one ``word v_1 ... v_D`` per line (a word2vec ``count D`` header line is
  skipped). Words of ``vocab`` not in the file (and ``UNK``) get ``U(-scale, scale)`` (Kim's
  init, seeded), ``PAD`` zeros; ``found`` counts the vocabulary words taken from the file.
  Raises ValueError naming the file and line for a malformed line or inconsistent ``D``.
  """
  index = {t: i for i, t in enumerate(vocab.tokens)}
  rows, vecs, dim = [], [], None
  with open(path, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
      parts = line.rstrip("\n").rstrip().split(" ")
      if n == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
        continue  # word2vec text header
      try:
        values = np.array(parts[1:], np.float32)
      except ValueError:
        raise ValueError(f"word vector file {path}: line {n} is not 'word v_1 ... v_D' "
                         "(numbers)") from None
      if dim is None:
        dim = len(values)
      if not len(values) or len(values) != dim:
        raise ValueError(f"word vector file {path}: line {n} has {len(values)} numbers, "
                         f"expected {dim or '> 0'}")
      if parts[0] in index:
        rows.append(index[parts[0]])
        vecs.append(values)
  if dim is None:
    raise ValueError(f"word vector file {path}: no vectors")
  table = np.random.default_rng(seed).uniform(-scale, scale, (len(vocab), dim)).astype(np.float32)
  if rows:
    table[np.array(rows)] = np.stack(vecs)
  table[PAD] = 0.0
  return table, len(set(rows) - {PAD, UNK})
