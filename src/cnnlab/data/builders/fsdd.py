"""``cnnlab_fsdd``: the Free Spoken Digit Dataset (Jackson et al.), downloaded or from a folder.

Files ``{digit}_{speaker}_{index}.wav``: mono 16-bit PCM at 8 kHz (the dataset's format; any
other file, rate or name is refused). Features: ``audio`` int16 ``(None,)`` (each recording's
own length), ``label`` ClassLabel(10) (the digit), ``speaker`` str, ``index`` int32. Splits as
the dataset's README defines them: ``test`` = index 0-4, ``train`` = index >= 5 (TFDS's ``all``
= both); examples ordered by (speaker, digit, index).
Configs:
- ``download`` (default): the v1.0.9 GitHub release archive (``URL``; 3,000 recordings, six
  speakers), size and sha256 checked by TFDS against ``checksums_fsdd.tsv`` beside this module
  (the same values as TFDS's own ``spoken_digit`` builder).
- ``manual_<fp>`` (``manual_config(folder)``): the ``*.wav`` files of a folder (e.g.
  ``../shared/data/fsdd``: 2,500 recordings, five speakers); ``<fp>`` is the first 16 hex
  digits of a sha256 over the file names and bytes, so other or changed files prepare anew.
Options (``cnnlab.data.load(..., speakers=, exclude_speakers=)``): keep only the recordings of
``speakers`` (all if empty) and drop those of ``exclude_speakers`` -- e.g. train on four
speakers' ``all`` and evaluate on the fifth's (the speaker-independent protocol).
Every bad file raises one ``ValueError`` naming it before anything is written.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import pathlib
import posixpath
import re
import tarfile
import wave

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from cnnlab.data import builders, views
from cnnlab.data.builders import ArrayRecordBuilder

URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/v1.0.9.tar.gz"
ARCHIVE_FOLDER = "free-spoken-digit-dataset-1.0.9/recordings"
SAMPLE_RATE = 8000
TEST_INDICES = 5  # index < 5 -> test
NAME = re.compile(r"(?P<digit>[0-9])_(?P<speaker>[A-Za-z0-9]+)_(?P<index>[0-9]+)\.wav")
OPTIONS = {"speakers": (), "exclude_speakers": ()}


def read_wav(raw: bytes, path) -> np.ndarray:
  """The int16 samples of mono 16-bit PCM WAV bytes ``raw`` (read from ``path``, named in
  errors) at ``SAMPLE_RATE`` (ValueError if not)."""
  if not raw:
    raise ValueError(f"WAV file {path}: empty file (0 bytes)")
  try:
    with wave.open(io.BytesIO(raw), "rb") as w:
      channels, width, rate, n = (w.getnchannels(), w.getsampwidth(), w.getframerate(),
                                  w.getnframes())
      raw = w.readframes(n)
  except (wave.Error, EOFError) as e:
    raise ValueError(f"WAV file {path}: bad WAV header ({e}); expected a RIFF/WAVE PCM file") \
        from None
  if (channels, width) != (1, 2):
    raise ValueError(f"WAV file {path}: {channels} channel(s) of {8 * width}-bit samples; "
                     "expected mono 16-bit PCM")
  if rate != SAMPLE_RATE:
    raise ValueError(f"WAV file {path}: sample rate {rate} Hz; expected {SAMPLE_RATE} Hz")
  if n == 0 or len(raw) != 2 * n:
    raise ValueError(f"WAV file {path}: header says {n} samples, data holds {len(raw) // 2}"
                     + (" (no audio)" if n == 0 else " (truncated)"))
  return np.frombuffer(raw, "<i2").astype(np.int16)


def read_folder(folder):
  """(columns, fingerprint) of the ``*.wav`` files in ``folder`` (see :func:`read_files`)."""
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise ValueError(f"manual_dir {folder} is not a directory")
  return read_files({p.name: (p, p.read_bytes()) for p in sorted(folder.glob("*.wav"))},
                    f"manual_dir {folder}")


def read_archive(path):
  """(columns, fingerprint) of the release archive's recordings (read from the tar, nothing
  extracted)."""
  with tarfile.open(path) as tar:
    members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".wav")
               and posixpath.dirname(m.name) == ARCHIVE_FOLDER]
    files = {posixpath.basename(m.name): (f"{path}:{m.name}", tar.extractfile(m).read())
             for m in members}
  return read_files(files, f"archive {path}")


def read_files(files: dict, where: str):
  """(columns {audio (list of int16 arrays), label, speaker, index}, fingerprint) of ``files``
  ({file name: (path named in errors, bytes)}), ordered by (speaker, digit, index), all
  validated; ``fingerprint``: sha256 hex over the names and bytes."""
  if not files:
    raise ValueError(f"{where}: no *.wav files (expected {{digit}}_{{speaker}}_{{index}}.wav, "
                     "e.g. 0_george_0.wav)")
  keys = []
  for name, (path, _) in files.items():
    m = NAME.fullmatch(name)
    if not m:
      raise ValueError(f"WAV file {path}: bad file name; expected {{digit}}_{{speaker}}_"
                       "{index}.wav with digit 0-9, speaker letters/digits, index an integer")
    keys.append((m["speaker"], int(m["digit"]), int(m["index"]), name))
  keys.sort()
  h = hashlib.sha256()
  audio = []
  for *_, name in keys:
    path, raw = files[name]
    audio.append(read_wav(raw, path))
    h.update(name.encode() + b"\0" + hashlib.sha256(raw).digest())
  columns = {"audio": audio, "label": np.array([k[1] for k in keys], np.int64),
             "speaker": np.array([k[0] for k in keys], object),
             "index": np.array([k[2] for k in keys], np.int32)}
  return columns, h.hexdigest()


def manual_config(folder) -> tfds.core.BuilderConfig:
  """The config for the WAV files in ``folder``, all read and validated (raises ValueError)."""
  if folder is None:
    raise ValueError("dataset 'fsdd' without manual_dir downloads; internal misuse")
  _, fp = read_folder(folder)
  return builders.folder_config(folder, fp, "WAV files")


def select(builder, split, *, speakers=(), exclude_speakers=()):
  """``(source, DataInfo)`` of ``split`` restricted to the chosen speakers (see module doc)."""
  from cnnlab.data import sources  # noqa: PLC0415 - sources imports this module lazily
  source, info = sources.split_source("fsdd", builder, split)
  if not speakers and not exclude_speakers:
    return source, info
  everyone = views.read_all(builder.as_data_source("all"), ["speaker"])["speaker"]
  known = sorted({s.decode() for s in everyone})
  for field, names in (("speakers", speakers), ("exclude_speakers", exclude_speakers)):
    bad = [s for s in names if s not in known]
    if bad or isinstance(names, str):
      raise sources.DataError(field, f"{names!r} must be a tuple of speakers of this data "
                              f"(allowed: {known}); {bad or names!r} is not")
  spk = np.array([s.decode() for s in views.read_all(source, ["speaker"])["speaker"]])
  keep = (np.isin(spk, speakers) if speakers else np.ones(len(spk), bool))
  keep &= ~np.isin(spk, exclude_speakers)
  if not keep.any():
    raise sources.DataError("speakers", f"speakers={tuple(speakers)} without "
                            f"exclude_speakers={tuple(exclude_speakers)} selects no recording "
                            f"of split {split!r} (allowed: {known})")
  return views.Subset(source, np.flatnonzero(keep)), info


class CnnlabFsdd(ArrayRecordBuilder):
  """FSDD from the v1.0.9 release archive or a folder of WAV files (see module doc)."""

  BUILDER_CONFIGS = [tfds.core.BuilderConfig(
      name="download", description=f"The recordings of {URL}.")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "A folder of {digit}_{speaker}_{index}.wav files (mono 16-bit PCM, 8 kHz); use the "
      "config `manual_config(folder)`.")

  @tfds.core.utils.classproperty
  @classmethod
  def _checksums_path(cls) -> epath.Path:
    # One checksum file per downloading builder: TFDS reads every URL of the file it is given.
    return epath.Path(inspect.getfile(cls)).parent / "checksums_fsdd.tsv"

  def _info(self):
    return self.dataset_info(
        {"audio": tfds.features.Tensor(shape=(None,), dtype=np.int16),
         "label": tfds.features.ClassLabel(num_classes=10),
         "speaker": tfds.features.Tensor(shape=(), dtype=np.str_),
         "index": tfds.features.Tensor(shape=(), dtype=np.int32)},
        supervised_keys=("audio", "label"),
        homepage="https://github.com/Jakobovski/free-spoken-digit-dataset",
        citation="Z. Jackson, C. Souza, J. Flaks, Y. Pan, H. Nicolas & A. Thite, Free Spoken "
                 "Digit Dataset v1.0.9, 2018.")

  def _split_generators(self, dl_manager):
    if builders.is_folder_config(self):
      columns = builders.read_checked(self, read_folder, dl_manager.manual_dir, "WAV files")
    else:
      builders.check_resolvable(URL, "FSDD", "FSDD WAV files", "../shared/data/fsdd")
      try:
        columns, _ = read_archive(dl_manager.download(URL))
      except ValueError as e:
        raise ValueError(f"FSDD archive downloaded from {URL}: {e}") from e
    test = columns["index"] < TEST_INDICES
    return {split: self._generate_examples(
        {k: [v[i] for i in np.flatnonzero(rows)] for k, v in columns.items()})
        for split, rows in (("train", ~test), ("test", test))}
