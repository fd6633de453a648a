"""``mr`` and cnnlab.data.text: tiny sentence files written here, Kim's own ``clean_str``
(copied from his ``process_data.py``) as the tokeniser reference, folds, the run's vocabulary,
word vectors, bad bytes, and the real shared folder's README counts."""

import functools
import json
import pathlib
import re

import numpy as np
import pytest

from cnnlab import data
from cnnlab.data import text
from cnnlab.data.builders import mr as mr_builder

MR = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mr"

NEG = ["a dull , lifeless film .", "it isn't funny", "boring boring plot", "the worst film",
       "flat acting and dull plot"]
POS = ["a joyous film !", "it's great fun", "what a charming story", "the best film ( ever )",
       "sharp , witty and fun"]


def kim_clean_str(string):
  """Kim (2014), process_data.py, verbatim (TREC=False)."""
  string = re.sub(r"[^A-Za-z0-9(),!?\'\`]", " ", string)
  string = re.sub(r"\'s", " \'s", string)
  string = re.sub(r"\'ve", " \'ve", string)
  string = re.sub(r"n\'t", " n\'t", string)
  string = re.sub(r"\'re", " \'re", string)
  string = re.sub(r"\'d", " \'d", string)
  string = re.sub(r"\'ll", " \'ll", string)
  string = re.sub(r",", " , ", string)
  string = re.sub(r"!", " ! ", string)
  string = re.sub(r"\(", " \\( ", string)
  string = re.sub(r"\)", " \\) ", string)
  string = re.sub(r"\?", " \\? ", string)
  string = re.sub(r"\s{2,}", " ", string)
  return string.strip().lower()


def kim_tokens(sentence):
  # His "\(" "\)" "\?" tokens are "(" ")" "?" here (see text.clean_str).
  return [t.lstrip("\\") if t in ("\\(", "\\)", "\\?") else t
          for t in kim_clean_str(sentence).split()]


def write_mr(folder, neg=NEG, pos=POS, encoding="cp1252"):
  folder.mkdir(parents=True, exist_ok=True)
  (folder / "rt-polarity.neg").write_bytes(("\n".join(neg) + "\n").encode(encoding))
  (folder / "rt-polarity.pos").write_bytes(("\n".join(pos) + "\n").encode(encoding))
  return folder


def test_clean_str_is_kims():
  sentences = NEG + POS + ["Don't you've they're I'd we'll (x) why? WOW!! caf\u00e9 \u2013 10/10",
                           "``quoted'' rock's n't 2:1"]
  for s in sentences:
    assert text.clean_str(s) == kim_tokens(s), s


def test_folds_are_disjoint_and_cover():
  for n, k in ((10, 3), (9596, 10), (7, 7)):
    folds = [set(f.tolist()) for f in mr_builder.folds(n, k, seed=0)]
    assert set().union(*folds) == set(range(n)) and sum(map(len, folds)) == n
    assert max(map(len, folds)) - min(map(len, folds)) <= 1


def test_fold_splits_and_vocabulary_from_train_only(tmp_path):
  folder = write_mr(tmp_path / "mr")
  vocab_file = tmp_path / "run" / "vocab.json"
  load = functools.partial(data.load, "mr", data_dir=tmp_path / "tfds", manual_dir=folder,
                           num_folds=5, fold=2, vocab_file=str(vocab_file))
  train, info = load("train")
  test, _ = load("test")
  everything, _ = load("all")
  assert info.splits == {"all": 10, "train": 8, "test": 2} and info.num_classes == 2
  sentences = NEG + POS
  labels = [0] * 5 + [1] * 5
  vocab = text.Vocabulary.load(vocab_file)
  train_words = set()
  ids_to_text = {}
  for source in (train, test):
    for i in range(len(source)):
      ids = source[i]["tokens"]
      ids_to_text[tuple(ids)] = source[i]["label"]
  # Every sentence appears once in train + test, with its label.
  assert len(ids_to_text) == 10 and sorted(ids_to_text.values()) == sorted(labels)
  # The vocabulary is exactly the training sentences' words (brute force over the files).
  test_rows = mr_builder.folds(10, 5, seed=0)[2]
  for i, s in enumerate(sentences):
    if i not in test_rows:
      train_words |= set(kim_tokens(s))
  assert set(vocab.tokens[2:]) == train_words and vocab.tokens[:2] == text.SPECIALS
  assert vocab.max_len == max(len(kim_tokens(s)) for i, s in enumerate(sentences)
                              if i not in test_rows)
  for i, row in enumerate(test_rows):
    tokens = kim_tokens(sentences[row])[:vocab.max_len]
    expected = [vocab.tokens.index(t) if t in train_words else text.UNK for t in tokens]
    got = test[i]["tokens"]
    np.testing.assert_array_equal(got[:len(expected)], expected)
    assert not got[len(expected):].any() and got.dtype == np.int32  # 0-padded; mask = ids > 0
    assert test[i]["label"] == labels[row]
  assert len(everything) == 10
  # Another fold's train split refuses this run's vocabulary; evaluation splits reuse it.
  with pytest.raises(data.DataError, match="was built from") as e:
    load("train", fold=3)
  assert e.value.field == "vocab_file"


def test_other_folder_is_mapped_with_the_runs_vocabulary(tmp_path):
  vocab_file = str(tmp_path / "run" / "vocab.json")
  data.load("mr", "train", data_dir=tmp_path / "tfds", manual_dir=write_mr(tmp_path / "mr"),
            vocab_file=vocab_file, num_folds=2)
  other = write_mr(tmp_path / "other", neg=["zzz dull qqq"], pos=["fun fun xyzzy"])
  source, info = data.load("mr", "all", data_dir=tmp_path / "tfds", manual_dir=other,
                           vocab_file=vocab_file, num_folds=2)
  vocab = text.Vocabulary.load(vocab_file)
  assert info.input_shape == (vocab.max_len,)
  for i, sentence in enumerate(["zzz dull qqq", "fun fun xyzzy"]):
    expected = [vocab.tokens.index(t) if t in vocab.tokens else text.UNK for t in sentence.split()]
    np.testing.assert_array_equal(source[i]["tokens"][:3], expected)
  assert (source[0]["tokens"][[0, 2]] == text.UNK).all()
  with pytest.raises(data.DataError, match="not found: the vocabulary is written") as e:
    data.load("mr", "all", data_dir=tmp_path / "tfds", manual_dir=other,
              vocab_file=str(tmp_path / "none.json"))
  assert e.value.field == "vocab_file"


BAD_BYTES = {
    "utf8": ("caf\u00e9 noir".encode("utf-8"), "is UTF-8 with non-ASCII characters"),
    "undefined_cp1252": (b"ok\n\x81bad\n", r"byte 0x81 at offset 3 \(line 2\)"),
    "nul": (b"ok\nb\x00ad\n", r"control character '\\x00' at offset 4 \(line 2\)"),
    "empty": (b"", "empty; expected one sentence per line"),
    "blank_line": (b"ok\n\nfine\n", "line 2 is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_BYTES))
def test_bad_bytes_raise_naming_the_file(tmp_path, case):
  raw, message = BAD_BYTES[case]
  folder = write_mr(tmp_path / "mr")
  (folder / "rt-polarity.pos").write_bytes(raw)
  with pytest.raises(data.DataError, match=f"rt-polarity.pos: {message}") as e:
    data.load("mr", "train", data_dir=tmp_path / "tfds", manual_dir=folder)
  assert e.value.field == "manual_dir"
  assert not list((tmp_path / "tfds").rglob("dataset_info.json"))


def test_latin1_bytes_are_read(tmp_path):
  folder = write_mr(tmp_path / "mr", pos=["a caf\u00e9 \u2013 na\u00efve film"] + POS[1:])
  source, _ = data.load("mr", "all", data_dir=tmp_path / "tfds", manual_dir=folder)
  assert len(source) == 10
  with pytest.raises(data.DataError, match="needs manual_dir"):
    data.load("mr", "all", data_dir=tmp_path / "tfds")


def test_word_vectors(tmp_path):
  vocab = text.Vocabulary.build([["good", "film", "bad"], ["film"]])
  path = tmp_path / "vectors.txt"
  path.write_text("3 2\nfilm 0.5 -1.0\ngood 2 3\nunused 9 9\n")
  table, found = text.word_vectors(path, vocab, seed=0)
  assert table.shape == (len(vocab), 2) and found == 2
  np.testing.assert_array_equal(table[vocab.tokens.index("film")], [0.5, -1.0])
  np.testing.assert_array_equal(table[vocab.tokens.index("good")], [2, 3])
  np.testing.assert_array_equal(table[text.PAD], [0, 0])
  rand = table[[text.UNK, vocab.tokens.index("bad")]]
  assert np.all(np.abs(rand) <= 0.25) and np.all(rand != 0)
  glove = tmp_path / "glove.txt"  # GloVe: no header line
  glove.write_text("film 0.5 -1.0\nbad 1 1\n")
  np.testing.assert_array_equal(text.word_vectors(glove, vocab)[0][vocab.tokens.index("bad")],
                                [1, 1])
  glove.write_text("film 0.5 -1.0\nbad 1\n")
  with pytest.raises(ValueError, match="glove.txt: line 2 has 1 numbers, expected 2"):
    text.word_vectors(glove, vocab)


def test_vocabulary_file_round_trip_and_garbage(tmp_path):
  vocab = text.Vocabulary.build([["b", "a", "b"]], built_from={"fold": 1})
  vocab.save(tmp_path / "v.json")
  back = text.Vocabulary.load(tmp_path / "v.json")
  assert back.tokens == ("<pad>", "<unk>", "b", "a") and back.built_from == {"fold": 1}
  (tmp_path / "bad.json").write_text(json.dumps({"tokens": ["x"]}))
  with pytest.raises(ValueError, match="bad.json: unreadable"):
    text.Vocabulary.load(tmp_path / "bad.json")


def test_real_mr_matches_readme(tmp_path):
  if not (MR / "rt-polarity.pos").exists():
    pytest.skip(f"real MR sentences not found at {MR} (shared data folder beside the repo)")
  source, info = data.load("mr", "all", data_dir=tmp_path, manual_dir=MR)
  assert info.splits == {"all": 9596, "train": 8636, "test": 960}  # README: 4,798 + 4,798
  np.testing.assert_array_equal(np.bincount(source.columns["label"]), [4798, 4798])
  assert (source.columns["tokens"] > 0).sum(1).max() == info.input_shape[0]  # longest in train

def test_options_from_a_config():
  import ml_collections
  cfg = ml_collections.ConfigDict(dict(name="mr", fold=3, num_folds=10, image_size=0))
  assert data.options("mr", cfg, "/runs/a") == {"fold": 3, "num_folds": 10,
                                                "vocab_file": "/runs/a/vocab.json"}
  cfg = ml_collections.ConfigDict(dict(exclude_speakers=["lucas"], fold=1))
  assert data.options("fsdd", cfg) == {"exclude_speakers": ("lucas",)}
  assert data.options("digits", cfg) == {}
