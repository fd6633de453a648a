"""``fsdd``: WAV folders written here with the stdlib ``wave`` module, the download path served
from 127.0.0.1, bad files, the speaker filter, and the real shared folder's README figures."""

import functools
import hashlib
import http.server
import io
import pathlib
import tarfile
import threading
import wave

import numpy as np
import pytest
import tensorflow_datasets as tfds

from cnnlab import data
from cnnlab.data.builders import fsdd

FSDD = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fsdd"


def wav_bytes(samples, rate=8000, channels=1, width=2):
  buf = io.BytesIO()
  with wave.open(buf, "wb") as w:
    w.setnchannels(channels)
    w.setsampwidth(width)
    w.setframerate(rate)
    w.writeframes(np.asarray(samples, "<i2").tobytes())
  return buf.getvalue()


def write_recordings(folder, speakers=("anna", "bob", "cleo"), digits=(3, 7), indices=(0, 6)):
  """One WAV per (speaker, digit, index), samples encoding them; returns {name: samples}."""
  folder.mkdir(parents=True, exist_ok=True)
  out = {}
  for s, speaker in enumerate(speakers):
    for digit in digits:
      for index in indices:
        x = np.arange(10 + s + digit + index, dtype=np.int16) * (s + 1) + digit
        name = f"{digit}_{speaker}_{index}.wav"
        (folder / name).write_bytes(wav_bytes(x))
        out[name] = x
  return out


def as_list(source):
  return [source[i] for i in range(len(source))]


def test_folder_splits_features_and_order(tmp_path):
  written = write_recordings(tmp_path / "wav")
  for split, indices in (("train", {6}), ("test", {0}), ("all", {0, 6})):
    source, info = data.load("fsdd", split, data_dir=tmp_path / "tfds", manual_dir=tmp_path / "wav")
    got = as_list(source)
    expected = sorted(n for n in written if int(n[:-4].split("_")[2]) in indices)
    assert len(got) == len(expected)
    for e in got:
      name = f"{e['label']}_{e['speaker'].decode()}_{e['index']}.wav"
      np.testing.assert_array_equal(e["audio"], written[name])
  assert info == data.DataInfo("audio", "label", (None,), "int16", 10, {"train": 6, "test": 6})
  train, _ = data.load("fsdd", "train", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "wav")
  keys = [(e["speaker"], e["label"], e["index"]) for e in as_list(train)]
  assert keys == sorted(keys)


def test_speaker_filter(tmp_path):
  write_recordings(tmp_path / "wav")
  load = functools.partial(data.load, "fsdd", data_dir=tmp_path / "tfds",
                           manual_dir=tmp_path / "wav")
  held_in, _ = load("all", exclude_speakers=("cleo",))
  held_out, _ = load("all", speakers=("cleo",))
  assert {e["speaker"] for e in as_list(held_in)} == {b"anna", b"bob"}
  assert {e["speaker"] for e in as_list(held_out)} == {b"cleo"}
  assert len(held_in) == 8 and len(held_out) == 4
  two, _ = load("test", speakers=("anna", "bob"), exclude_speakers=("bob",))
  assert [e["speaker"] for e in as_list(two)] == [b"anna"] * 2
  with pytest.raises(data.DataError, match=r"allowed: \['anna', 'bob', 'cleo'\]") as e:
    load("all", speakers=("dave",))
  assert e.value.field == "speakers"
  with pytest.raises(data.DataError, match="selects no recording") as e:
    load("all", speakers=("anna",), exclude_speakers=("anna",))
  with pytest.raises(data.DataError, match="takes no option 'speaker'") as e:
    load("all", speaker="anna")
  assert e.value.field == "speaker"


def _stereo(f):
  f.write_bytes(wav_bytes(np.zeros(20, np.int16), channels=2))


BAD = {
    "bad_header": (lambda f: f.write_bytes(b"RIFF\x10\x00\x00\x00JUNKJUNKJUNK"),
                   "3_bob_6.wav: bad WAV header"),
    "not_riff": (lambda f: f.write_bytes(b"ID3" + bytes(60)), "3_bob_6.wav: bad WAV header"),
    "wrong_rate": (lambda f: f.write_bytes(wav_bytes(np.zeros(20), rate=16000)),
                   "3_bob_6.wav: sample rate 16000 Hz; expected 8000 Hz"),
    "empty_file": (lambda f: f.write_bytes(b""), r"3_bob_6.wav: empty file \(0 bytes\)"),
    "no_samples": (lambda f: f.write_bytes(wav_bytes(np.zeros(0))), r"3_bob_6.wav: .*no audio"),
    "truncated": (lambda f: f.write_bytes(wav_bytes(np.zeros(50))[:-30]),
                  r"3_bob_6.wav: header says 50 samples, data holds 35 \(truncated\)"),
    "stereo": (_stereo, "3_bob_6.wav: 2 channel"),
    "bad_name": (lambda f: (f.parent / "three_bob.wav").write_bytes(wav_bytes(np.zeros(5))),
                 "three_bob.wav: bad file name; expected {digit}_{speaker}_{index}.wav"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_raises_naming_it_and_prepares_nothing(tmp_path, case):
  make, message = BAD[case]
  folder = tmp_path / "wav"
  write_recordings(folder)
  make(folder / "3_bob_6.wav")
  with pytest.raises(data.DataError, match=message) as e:
    data.load("fsdd", "train", data_dir=tmp_path / "tfds", manual_dir=folder)
  assert e.value.field == "manual_dir"
  assert not list((tmp_path / "tfds").rglob("dataset_info.json"))


def test_empty_or_missing_folder(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(data.DataError, match=r"no \*.wav files"):
    data.load("fsdd", "train", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "empty")
  with pytest.raises(data.DataError, match="is not a directory"):
    data.load("fsdd", "train", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "nope")


def test_shipped_checksum_is_tfds_spoken_digit_checksum():
  ref = tfds.core.download.checksums.load_url_infos(
      pathlib.Path(tfds.__file__).parent / "datasets" / "spoken_digit" / "checksums.tsv")
  assert fsdd.CnnlabFsdd.url_infos == ref
  assert list(ref) == [fsdd.URL]


def test_download_verified_and_parsed(tmp_path, monkeypatch):
  written = write_recordings(tmp_path / "rec", speakers=("theo",), digits=(1,), indices=(2, 9))
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode="w:gz") as tar:
    for p in sorted((tmp_path / "rec").iterdir()):
      tar.add(p, arcname=f"{fsdd.ARCHIVE_FOLDER}/{p.name}")
  mirror = tmp_path / "mirror"
  mirror.mkdir()
  (mirror / "v1.0.9.tar.gz").write_bytes(buf.getvalue())

  class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
      pass

  server = http.server.ThreadingHTTPServer(
      ("127.0.0.1", 0), functools.partial(Quiet, directory=str(mirror)))
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    url = f"http://127.0.0.1:{server.server_address[1]}/v1.0.9.tar.gz"
    for var in ("NO_PROXY", "no_proxy"):
      monkeypatch.setenv(var, "127.0.0.1,localhost")
    monkeypatch.setattr(fsdd, "URL", url)
    raw = buf.getvalue()
    info = functools.partial(tfds.core.download.checksums.UrlInfo, size=len(raw),
                             filename="v1.0.9.tar.gz")
    good = info(checksum=hashlib.sha256(raw).hexdigest())
    monkeypatch.setattr(fsdd.CnnlabFsdd, "url_infos", {url: info(checksum="0" * 64)})
    with pytest.raises(tfds.core.download.download_manager.NonMatchingChecksumError):
      data.load("fsdd", "train", data_dir=tmp_path / "tfds")
    assert not list((tmp_path / "tfds").rglob("dataset_info.json"))
    monkeypatch.setattr(fsdd.CnnlabFsdd, "url_infos", {url: good})
    for split, index in (("train", 9), ("test", 2)):
      source, _ = data.load("fsdd", split, data_dir=tmp_path / "tfds")
      (e,) = as_list(source)
      np.testing.assert_array_equal(e["audio"], written[f"1_theo_{index}.wav"])
  finally:
    server.shutdown()
    server.server_close()


def test_real_fsdd_matches_readme(tmp_path):
  if not (FSDD / "0_george_0.wav").exists():
    pytest.skip(f"real FSDD recordings not found at {FSDD} (shared data folder beside the repo)")
  source, info = data.load("fsdd", "all", data_dir=tmp_path, manual_dir=FSDD)
  assert info.splits == {"train": 2250, "test": 250} and len(source) == 2500
  examples = as_list(source)
  speakers = np.array([e["speaker"] for e in examples])
  labels = np.array([e["label"] for e in examples])
  lengths = np.array([len(e["audio"]) for e in examples])
  assert sorted(set(speakers)) == [b"george", b"jackson", b"lucas", b"nicolas", b"yweweler"]
  for s in set(speakers):
    np.testing.assert_array_equal(np.bincount(labels[speakers == s], minlength=10), [50] * 10)
  # README: 0.14-1.31 s at 8 kHz, median 0.43 s.
  assert 0.13 <= lengths.min() / 8000 and lengths.max() / 8000 <= 1.32
  assert np.median(lengths) / 8000 == pytest.approx(0.43, abs=0.01)
