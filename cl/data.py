"""Datasets for the continual-learning experiments, as plain numpy arrays.

Every loader returns a :class:`Dataset`: train and test arrays plus the number
of classes and a name.  Image datasets hold ``float32`` arrays of shape
``[N, H, W, C]`` scaled to ``[0, 1]``; vector datasets hold ``[N, D]``.  Labels
are always ``int32`` of shape ``[N]`` with values in ``[0, num_classes)``.

Available datasets (see :data:`DATASETS` and :func:`load_dataset`):

``fashion_mnist`` / ``mnist``
    The 28x28 grey-scale IDX datasets, read by :func:`read_idx`.  They are
    looked for, in order, in an explicit ``data_dir``; otherwise (Fashion-MNIST
    only) in the Debian package directory :data:`DEBIAN_FASHION_MNIST_DIR`
    (``apt-get install dataset-fashion-mnist``) and then in the cache directory
    (``~/.cache/cljax/<name>``, or ``$CLJAX_DATA_DIR/<name>``).  With
    ``download=True`` missing files are fetched over HTTP(S) into the cache with
    pooch and verified by SHA-256 before they are used; nothing unverified is
    ever kept.
``digits``
    scikit-learn's bundled 8x8 digits (no network needed).
``blobs``
    Synthetic, well separated Gaussian blobs for exact, fast tests.

Missing or corrupt data raises :class:`DataError`, whose message names the
file (or URL) concerned and what was expected.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
  'DATASETS',
  'DEBIAN_FASHION_MNIST_DIR',
  'FASHION_MNIST_URL',
  'MNIST_URL',
  'CACHE_ENV_VAR',
  'FASHION_MNIST_CHECKSUMS',
  'MNIST_CHECKSUMS',
  'Dataset',
  'DataError',
  'FileChecksum',
  'default_cache_dir',
  'read_idx',
  'load_fashion_mnist',
  'load_mnist',
  'load_digits',
  'make_blobs',
  'load_dataset',
]

#: Names accepted by :func:`load_dataset`.
DATASETS = ('fashion_mnist', 'mnist', 'digits', 'blobs')

#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist/'

#: Default download locations (a file name is appended to each).
FASHION_MNIST_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'
MNIST_URL = 'https://ossci-datasets.s3.amazonaws.com/mnist/'

#: Environment variable that, when set, replaces ``~/.cache/cljax`` as the
#: root of the download cache.
CACHE_ENV_VAR = 'CLJAX_DATA_DIR'

# Base names of the four IDX files shared by MNIST and Fashion-MNIST.
_TRAIN_IMAGES = 'train-images-idx3-ubyte'
_TRAIN_LABELS = 'train-labels-idx1-ubyte'
_TEST_IMAGES = 't10k-images-idx3-ubyte'
_TEST_LABELS = 't10k-labels-idx1-ubyte'
_IDX_FILES = (_TRAIN_IMAGES, _TRAIN_LABELS, _TEST_IMAGES, _TEST_LABELS)

_NUM_TRAIN = 60000
_NUM_TEST = 10000
_IMAGE_HW = (28, 28)
_NUM_CLASSES = 10

_DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 20


# --------------------------------------------------------------------------
# Public types.


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
  """A labelled image/feature dataset as numpy arrays.

  Contract (checked on construction):

  * ``x_train`` / ``x_test``: ``float32``; ``[N, H, W, C]`` for images (values
    in ``[0, 1]``) or ``[N, D]`` for feature vectors; both splits have the
    same per-example shape.
  * ``y_train`` / ``y_test``: ``int32`` of shape ``[N]`` matching the
    corresponding ``x``, with values in ``[0, num_classes)``.

  Equality is identity (arrays have no single truth value); compare fields
  with ``np.array_equal`` instead.
  """

  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  name: str

  def __post_init__(self) -> None:
    for split in ('train', 'test'):
      x = getattr(self, f'x_{split}')
      y = getattr(self, f'y_{split}')
      if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim < 2:
        raise ValueError(
          f'Dataset {self.name!r}: x_{split} must be a float32 array of rank >= 2, '
          f'got {type(x).__name__} {getattr(x, "dtype", "?")} {getattr(x, "shape", "?")}'
        )
      if not isinstance(y, np.ndarray) or y.dtype != np.int32 or y.shape != (x.shape[0],):
        raise ValueError(
          f'Dataset {self.name!r}: y_{split} must be an int32 array of shape '
          f'({x.shape[0]},), got {getattr(y, "dtype", "?")} {getattr(y, "shape", "?")}'
        )
      if y.size and (y.min() < 0 or y.max() >= self.num_classes):
        raise ValueError(
          f'Dataset {self.name!r}: y_{split} values must lie in [0, {self.num_classes}), '
          f'got [{y.min()}, {y.max()}]'
        )
    if self.x_train.shape[1:] != self.x_test.shape[1:]:
      raise ValueError(
        f'Dataset {self.name!r}: train and test examples differ in shape: '
        f'{self.x_train.shape[1:]} vs {self.x_test.shape[1:]}'
      )

  def __repr__(self) -> str:
    return (
      f'Dataset(name={self.name!r}, num_classes={self.num_classes}, '
      f'x_train={self.x_train.shape}, x_test={self.x_test.shape})'
    )


class DataError(Exception):
  """Missing or corrupt data.

  The message names the file path (or URL) involved and what was expected,
  and for missing datasets every place searched and how to obtain the data.
  """


@dataclasses.dataclass(frozen=True)
class FileChecksum:
  """Known SHA-256 digests of one downloadable IDX file (lower-case hex).

  ``gz_sha256`` is the digest of the file exactly as served (the ``.gz``
  bytes); ``raw_sha256`` is the digest of the decompressed IDX payload, which
  survives recompression (Debian, for instance, recompresses Fashion-MNIST).
  A download is accepted only if every digest that is set matches, and is
  refused outright if neither is set.
  """

  gz_sha256: str | None = None
  raw_sha256: str | None = None

  def __post_init__(self) -> None:
    for field in ('gz_sha256', 'raw_sha256'):
      value = getattr(self, field)
      if value is None:
        continue
      if (
        not isinstance(value, str)
        or len(value) != 64
        or any(c not in '0123456789abcdefABCDEF' for c in value)
      ):
        raise ValueError(f'{field} must be 64 hex digits, got {value!r}')
      object.__setattr__(self, field, value.lower())

  @property
  def known(self) -> bool:
    """Whether at least one digest is available to verify against."""
    return self.gz_sha256 is not None or self.raw_sha256 is not None


#: Fashion-MNIST: digests of the decompressed IDX files (they hold the official
#: data; the upstream and Debian ``.gz`` wrappers differ byte-wise, so only the
#: payload digest is pinned).
FASHION_MNIST_CHECKSUMS: dict[str, FileChecksum] = {
  _TRAIN_IMAGES: FileChecksum(
    raw_sha256='c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888'
  ),
  _TRAIN_LABELS: FileChecksum(
    raw_sha256='bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9'
  ),
  _TEST_IMAGES: FileChecksum(
    raw_sha256='5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b'
  ),
  _TEST_LABELS: FileChecksum(
    raw_sha256='0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34'
  ),
}

#: MNIST: digests of the original ``.gz`` files as published in TensorFlow
#: Datasets' ``url_checksums/mnist.txt`` (sizes 9912422, 28881, 1648877 and
#: 4542 bytes); mirrors serve these same bytes.
MNIST_CHECKSUMS: dict[str, FileChecksum] = {
  _TRAIN_IMAGES: FileChecksum(
    gz_sha256='440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609'
  ),
  _TRAIN_LABELS: FileChecksum(
    gz_sha256='3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c'
  ),
  _TEST_IMAGES: FileChecksum(
    gz_sha256='8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6'
  ),
  _TEST_LABELS: FileChecksum(
    gz_sha256='f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6'
  ),
}


# --------------------------------------------------------------------------
# IDX reading.

# IDX type code -> (big-endian dtype as stored, human name).
_IDX_DTYPES: dict[int, tuple[np.dtype, str]] = {
  0x08: (np.dtype('>u1'), 'unsigned byte'),
  0x09: (np.dtype('>i1'), 'signed byte'),
  0x0B: (np.dtype('>i2'), 'short'),
  0x0C: (np.dtype('>i4'), 'int'),
  0x0D: (np.dtype('>f4'), 'float'),
  0x0E: (np.dtype('>f8'), 'double'),
}

_GZIP_MAGIC = b'\x1f\x8b'


def _read_bytes(path: str) -> bytes:
  """Returns the IDX bytes of ``path``, decompressing gzip by magic bytes."""
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except FileNotFoundError:
    raise DataError(f'{path}: file not found (expected an IDX file, raw or gzip)') from None
  except IsADirectoryError:
    raise DataError(f'{path}: is a directory (expected an IDX file, raw or gzip)') from None
  except OSError as e:
    raise DataError(f'{path}: cannot read file ({e})') from e
  if data[:2] == _GZIP_MAGIC:
    try:
      data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
      raise DataError(
        f'{path}: starts with gzip magic bytes but is not a valid gzip stream '
        f'(truncated or corrupt): {e}'
      ) from e
  return data


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
  """Reads an IDX file into a native-byte-order numpy array.

  The file may be raw or gzip-compressed; compression is detected from the
  gzip magic bytes, not the file name.  The header is validated: two zero
  bytes, a type code in {0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int,
  0x0D float, 0x0E double}, a non-zero number of dimensions, big-endian
  uint32 sizes, and a payload of exactly ``prod(dims) * itemsize`` bytes.

  Returns:
    A writable array of shape ``dims`` (``uint8`` for type 0x08, ``int8``,
    ``int16``, ``int32``, ``float32`` or ``float64`` otherwise).

  Raises:
    DataError: the file is missing, unreadable, not valid gzip, has a bad
      header or a payload of the wrong length; the message names the file and
      what was expected.
  """
  path = os.fspath(path)
  data = _read_bytes(path)
  if len(data) < 4:
    raise DataError(f'{path}: expected a 4-byte IDX magic number, found only {len(data)} bytes')
  if data[0] != 0 or data[1] != 0:
    raise DataError(
      f'{path}: bad IDX magic {data[:4].hex()}: expected the first two bytes to be 00 00'
    )
  code, ndim = data[2], data[3]
  if code not in _IDX_DTYPES:
    raise DataError(
      f'{path}: bad IDX magic {data[:4].hex()}: unknown type code 0x{code:02x}, expected one '
      f'of {", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)}'
    )
  if ndim == 0:
    raise DataError(f'{path}: bad IDX magic {data[:4].hex()}: expected at least one dimension')
  header_len = 4 + 4 * ndim
  if len(data) < header_len:
    raise DataError(
      f'{path}: expected a {header_len}-byte IDX header for {ndim} dimensions, '
      f'found {len(data)} bytes'
    )
  dims = tuple(int(d) for d in np.frombuffer(data, dtype='>u4', count=ndim, offset=4))
  dtype, type_name = _IDX_DTYPES[code]
  expected = math.prod(dims) * dtype.itemsize
  found = len(data) - header_len
  if found != expected:
    raise DataError(
      f'{path}: expected {expected} bytes of {type_name} data for shape {dims}, found {found}'
    )
  array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
  return array.astype(dtype.newbyteorder('='), copy=True)


# --------------------------------------------------------------------------
# MNIST-style loading.


def default_cache_dir(name: str) -> str:
  """The download cache of dataset ``name``.

  ``$CLJAX_DATA_DIR/<name>`` if that variable is set and non-empty, otherwise
  ``~/.cache/cljax/<name>``.
  """
  root = os.environ.get(CACHE_ENV_VAR)
  if not root:
    root = os.path.join(os.path.expanduser('~'), '.cache', 'cljax')
  return os.path.join(root, name)


def _find_file(directory: str, stem: str) -> str | None:
  """The path of ``stem`` or ``stem.gz`` in ``directory`` (raw preferred)."""
  for candidate in (stem, stem + '.gz'):
    path = os.path.join(directory, candidate)
    if os.path.isfile(path):
      return path
  return None


def _find_all(directory: str) -> tuple[dict[str, str], list[str]]:
  """Splits the four IDX files into those found in ``directory`` and not."""
  found, missing = {}, []
  for stem in _IDX_FILES:
    path = _find_file(directory, stem)
    if path is None:
      missing.append(stem)
    else:
      found[stem] = path
  return found, missing


def _coerce_checksums(
  defaults: Mapping[str, FileChecksum], overrides: Mapping[str, Any] | None
) -> dict[str, FileChecksum]:
  """Merges caller overrides (per IDX file) into the default digests.

  An override value is a :class:`FileChecksum` or a mapping with keys
  ``gz_sha256`` and/or ``raw_sha256``; it replaces the default for that file.
  Keys are IDX base names, optionally with ``.gz``.
  """
  merged = dict(defaults)
  for key, value in (overrides or {}).items():
    stem = key[:-3] if key.endswith('.gz') else key
    if stem not in _IDX_FILES:
      raise ValueError(f'checksums: unknown file {key!r}, expected one of {list(_IDX_FILES)}')
    if isinstance(value, FileChecksum):
      merged[stem] = value
    elif isinstance(value, Mapping):
      unknown = set(value) - {'gz_sha256', 'raw_sha256'}
      if unknown:
        raise ValueError(
          f'checksums[{key!r}]: unknown keys {sorted(unknown)}, '
          "expected 'gz_sha256' and/or 'raw_sha256'"
        )
      merged[stem] = FileChecksum(**value)
    else:
      raise ValueError(
        f"checksums[{key!r}] must be a FileChecksum or a mapping with 'gz_sha256' "
        f"and/or 'raw_sha256', got {type(value).__name__}"
      )
  return merged


def _verify_payload(url: str, path: str, checksum: FileChecksum) -> None:
  """Checks the decompressed IDX payload of a downloaded file against ``raw_sha256``.

  pooch verifies the file as served (``gz_sha256``); the payload digest survives
  recompression, so it is the one Fashion-MNIST pins, and pooch has no hook for it.
  """
  raw_hash = hashlib.sha256()
  with open(path, 'rb') as f:
    compressed = f.read(2) == _GZIP_MAGIC
  try:
    opener = gzip.open if compressed else open
    with opener(path, 'rb') as f:
      while chunk := f.read(_CHUNK):
        raw_hash.update(chunk)
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f'{url}: downloaded file is not a valid gzip stream: {e}') from e
  if raw_hash.hexdigest() != checksum.raw_sha256:
    raise DataError(
      f'{url}: SHA-256 mismatch of the decompressed IDX payload: expected '
      f'{checksum.raw_sha256}, got {raw_hash.hexdigest()}'
    )


def _download_missing(
  base_url: str, directory: str, stems: list[str], checksums: Mapping[str, FileChecksum]
) -> None:
  """Downloads ``stems`` (as ``<stem>.gz``) into ``directory``, all or nothing.

  pooch fetches each file (``pooch.retrieve``: HTTP, a temporary file, the
  served file's SHA-256 when ``gz_sha256`` is known) into a staging directory
  next to the cache; the payload digest is checked after it. Only when every
  file verified are they renamed into place, so a failure leaves
  ``directory`` as it was (the staging directory is removed).
  """
  import pooch  # deferred: only downloads need pooch and requests
  import requests

  unverifiable = [s for s in stems if not checksums.get(s, FileChecksum()).known]
  if unverifiable:
    raise DataError(
      f'refusing to download {", ".join(s + ".gz" for s in unverifiable)} from {base_url}: '
      "no SHA-256 is known to verify against; pass checksums= with 'gz_sha256' or "
      "'raw_sha256' for each file"
    )
  try:
    os.makedirs(directory, exist_ok=True)
    staging = tempfile.mkdtemp(dir=directory, prefix='.download-')
  except OSError as e:
    raise DataError(f'{directory}: cannot create download cache directory ({e})') from e
  logger = pooch.get_logger()
  level = logger.level
  logger.setLevel('WARNING')  # pooch announces every download at INFO; the caller reports
  base = base_url if base_url.endswith('/') else base_url + '/'
  try:
    for stem in stems:
      url, checksum = base + stem + '.gz', checksums[stem]
      known = f'sha256:{checksum.gz_sha256}' if checksum.gz_sha256 else None
      try:
        path = pooch.retrieve(
          url,
          known_hash=known,
          fname=stem + '.gz',
          path=staging,
          downloader=pooch.HTTPDownloader(timeout=_DOWNLOAD_TIMEOUT_S),
        )
      except ValueError as e:  # pooch: the served file's digest differs
        raise DataError(f'{url}: SHA-256 mismatch of the downloaded file: {e}') from e
      except (requests.RequestException, OSError) as e:
        raise DataError(f'{url}: download failed: {e}') from e
      if checksum.raw_sha256 is not None:
        _verify_payload(url, path, checksum)
    for stem in stems:
      os.replace(os.path.join(staging, stem + '.gz'), os.path.join(directory, stem + '.gz'))
  finally:
    logger.setLevel(level)
    shutil.rmtree(staging, ignore_errors=True)


def _check_images(path: str, images: np.ndarray, count: int) -> None:
  expected = (count, *_IMAGE_HW)
  if images.dtype != np.uint8 or images.shape != expected:
    raise DataError(
      f'{path}: expected uint8 images of shape {expected}, '
      f'got {images.dtype} of shape {images.shape}'
    )


def _check_labels(path: str, labels: np.ndarray, count: int) -> None:
  if labels.dtype != np.uint8 or labels.ndim != 1:
    raise DataError(
      f'{path}: expected a 1-D uint8 label array, got {labels.dtype} of shape {labels.shape}'
    )
  if labels.shape != (count,):
    raise DataError(f'{path}: expected {count} labels (one per image), got {labels.shape[0]}')
  if labels.size and labels.max() >= _NUM_CLASSES:
    raise DataError(f'{path}: expected labels in [0, {_NUM_CLASSES}), found {int(labels.max())}')


def _load_from(files: Mapping[str, str], name: str) -> Dataset:
  """Reads and validates the four IDX files; returns the :class:`Dataset`."""
  arrays = {stem: read_idx(path) for stem, path in files.items()}
  for images_stem, labels_stem, count in (
    (_TRAIN_IMAGES, _TRAIN_LABELS, _NUM_TRAIN),
    (_TEST_IMAGES, _TEST_LABELS, _NUM_TEST),
  ):
    images, labels = arrays[images_stem], arrays[labels_stem]
    if images.ndim >= 1 and labels.ndim >= 1 and images.shape[0] != labels.shape[0]:
      raise DataError(
        f'{files[labels_stem]}: expected as many labels as images in '
        f'{files[images_stem]} ({images.shape[0]}), found {labels.shape[0]}'
      )
    _check_images(files[images_stem], images, count)
    _check_labels(files[labels_stem], labels, count)

  def to_x(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / np.float32(255.0))[..., None]

  return Dataset(
    x_train=to_x(arrays[_TRAIN_IMAGES]),
    y_train=arrays[_TRAIN_LABELS].astype(np.int32),
    x_test=to_x(arrays[_TEST_IMAGES]),
    y_test=arrays[_TEST_LABELS].astype(np.int32),
    num_classes=_NUM_CLASSES,
    name=name,
  )


def _load_idx_dataset(
  *,
  name: str,
  data_dir: str | None,
  download: bool,
  cache_dir: str | None,
  base_url: str,
  system_dirs: tuple[str, ...],
  checksums: Mapping[str, FileChecksum],
  how_to_get: list[str],
) -> Dataset:
  cache = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir(name)
  search = [os.fspath(data_dir)] if data_dir is not None else [*system_dirs, cache]

  report = []
  for directory in search:
    found, missing = _find_all(directory)
    if not missing:
      return _load_from(found, name)
    if not os.path.isdir(directory):
      report.append(f'  {directory}: directory does not exist')
    else:
      report.append(f'  {directory}: missing {", ".join(s + "[.gz]" for s in missing)}')

  if download:
    _, missing = _find_all(cache)
    _download_missing(base_url, cache, missing, checksums)
    found, missing = _find_all(cache)
    if missing:  # Should not happen: the download is all or nothing.
      raise DataError(f'{cache}: still missing {missing} after download')
    return _load_from(found, name)

  hints = '\n'.join(f'  - {h}' for h in how_to_get)
  raise DataError(
    f'{name} data not found. Searched:\n' + '\n'.join(report) + f'\nTo get it:\n{hints}'
  )


def load_fashion_mnist(
  data_dir: str | None = None,
  download: bool = False,
  cache_dir: str | None = None,
  base_url: str | None = None,
  checksums: Mapping[str, Any] | None = None,
) -> Dataset:
  """Loads Fashion-MNIST (60000 train / 10000 test 28x28 images, 10 classes).

  Search order: if ``data_dir`` is given it is the only local place searched
  (an explicit choice is never silently replaced by other data); otherwise
  :data:`DEBIAN_FASHION_MNIST_DIR`, then the cache directory (``cache_dir``,
  default :func:`default_cache_dir` ``("fashion_mnist")``; an explicit
  ``cache_dir`` holds the files itself, no ``<name>`` is appended).  A directory
  qualifies when it holds all of ``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
  ``t10k-labels-idx1-ubyte``, each raw or with ``.gz``.

  If nothing qualifies and ``download`` is true, the missing ``.gz`` files are
  fetched from ``base_url`` (default :data:`FASHION_MNIST_URL`) into the cache
  directory, verified against :data:`FASHION_MNIST_CHECKSUMS` (SHA-256 of the
  decompressed payload; ``checksums`` may override per file, see
  :class:`FileChecksum`), and only then moved into place, all or nothing.

  Returns:
    ``x`` float32 ``[N, 28, 28, 1]`` in ``[0, 1]``; ``y`` int32 in ``[0, 10)``.

  Raises:
    DataError: data missing (the message lists every place searched and how
      to get the data), corrupt, of the wrong shape/dtype, or a download that
      failed or did not verify.
  """
  return _load_idx_dataset(
    name='fashion_mnist',
    data_dir=data_dir,
    download=download,
    cache_dir=cache_dir,
    base_url=base_url or FASHION_MNIST_URL,
    system_dirs=(DEBIAN_FASHION_MNIST_DIR,),
    checksums=_coerce_checksums(FASHION_MNIST_CHECKSUMS, checksums),
    how_to_get=[
      f'apt-get install dataset-fashion-mnist (installs into {DEBIAN_FASHION_MNIST_DIR})',
      'point --config.data_dir (data_dir=) at a directory holding the four IDX files',
      'pass download=True to fetch and verify them into the cache '
      f'(set ${CACHE_ENV_VAR} to move the cache)',
    ],
  )


def load_mnist(
  data_dir: str | None = None,
  download: bool = False,
  cache_dir: str | None = None,
  base_url: str | None = None,
  checksums: Mapping[str, Any] | None = None,
) -> Dataset:
  """Loads MNIST (60000 train / 10000 test 28x28 digit images, 10 classes).

  Same contract as :func:`load_fashion_mnist`, except that there is no Debian
  package directory (search: ``data_dir`` alone if given, else the cache
  directory, default :func:`default_cache_dir` ``("mnist")``), downloads come
  from :data:`MNIST_URL` and are verified against :data:`MNIST_CHECKSUMS`
  (SHA-256 of the published ``.gz`` files).
  """
  return _load_idx_dataset(
    name='mnist',
    data_dir=data_dir,
    download=download,
    cache_dir=cache_dir,
    base_url=base_url or MNIST_URL,
    system_dirs=(),
    checksums=_coerce_checksums(MNIST_CHECKSUMS, checksums),
    how_to_get=[
      'point --config.data_dir (data_dir=) at a directory holding the four IDX files',
      'pass download=True to fetch and verify them into the cache '
      f'(set ${CACHE_ENV_VAR} to move the cache)',
    ],
  )


# --------------------------------------------------------------------------
# Small, network-free datasets.


def load_digits() -> Dataset:
  """scikit-learn's bundled 8x8 digits (1797 images, 10 classes; no network).

  Pixel values 0..16 are divided by 16, giving float32 ``[N, 8, 8, 1]`` in
  ``[0, 1]``.  The split is deterministic and stratified: 25% test via
  ``train_test_split(test_size=0.25, random_state=0, stratify=y)``, i.e.
  1347 train and 450 test examples.
  """
  import sklearn.datasets  # deferred: scikit-learn, for digits only
  import sklearn.model_selection

  bunch = sklearn.datasets.load_digits()
  x = (np.asarray(bunch.images, dtype=np.float32) / np.float32(16.0))[..., None]
  y = np.asarray(bunch.target, dtype=np.int32)
  x_train, x_test, y_train, y_test = sklearn.model_selection.train_test_split(
    x, y, test_size=0.25, random_state=0, stratify=y
  )
  return Dataset(
    x_train=np.ascontiguousarray(x_train),
    y_train=np.ascontiguousarray(y_train),
    x_test=np.ascontiguousarray(x_test),
    y_test=np.ascontiguousarray(y_test),
    num_classes=10,
    name='digits',
  )


def _blob_means(num_classes: int, num_features: int, radius: float) -> np.ndarray:
  """Deterministic, well separated class means.

  With ``num_classes <= 2 * num_features`` the means are ``+-radius`` times
  the unit axes (vertices of a cross-polytope), so every pair of means is at
  least ``radius * sqrt(2)`` apart.  With more classes they are spread evenly
  on a circle in the first two features (a line if there is one feature),
  whose radius grows so that neighbours keep that same separation.
  """
  means = np.zeros((num_classes, num_features), dtype=np.float64)
  min_sep = radius * math.sqrt(2.0)
  if num_classes <= 2 * num_features:
    for k in range(num_classes):
      means[k, k // 2] = radius if k % 2 == 0 else -radius
  elif num_features == 1:
    means[:, 0] = (np.arange(num_classes) - (num_classes - 1) / 2) * min_sep
  else:
    r = max(radius, min_sep / (2.0 * math.sin(math.pi / num_classes)))
    angles = 2.0 * math.pi * np.arange(num_classes) / num_classes
    means[:, 0] = r * np.cos(angles)
    means[:, 1] = r * np.sin(angles)
  return means


def make_blobs(
  num_classes: int = 4,
  num_features: int = 2,
  train_per_class: int = 200,
  test_per_class: int = 100,
  spread: float = 0.5,
  seed: int = 0,
) -> Dataset:
  """Synthetic isotropic Gaussian blobs, for fast and exact tests.

  Class ``k`` is drawn from ``N(mean_k, spread**2 I)`` with means of norm at
  least 3 that are pairwise at least ``3 * sqrt(2)`` apart (see
  :func:`_blob_means`), so with the default ``spread`` a nearest-class-mean
  classifier is essentially perfect.  Each split holds exactly
  ``*_per_class`` examples of every class, in a shuffled order.  The result
  depends only on the arguments (same ``seed`` -> identical arrays).

  Returns:
    ``x`` float32 ``[N, num_features]``, ``y`` int32, ``name="blobs"``.
  """
  if num_classes < 1 or num_features < 1:
    raise ValueError(
      f'num_classes and num_features must be >= 1, got {num_classes} and {num_features}'
    )
  if train_per_class < 1 or test_per_class < 1:
    raise ValueError(
      f'train_per_class and test_per_class must be >= 1, got {train_per_class} and {test_per_class}'
    )
  if not spread >= 0:
    raise ValueError(f'spread must be >= 0, got {spread}')
  rng = np.random.default_rng(seed)
  means = _blob_means(num_classes, num_features, radius=3.0)

  def sample(per_class: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
    x = means[y] + spread * rng.standard_normal((y.size, num_features))
    order = rng.permutation(y.size)
    return x[order].astype(np.float32), y[order]

  x_train, y_train = sample(train_per_class)
  x_test, y_test = sample(test_per_class)
  return Dataset(
    x_train=x_train,
    y_train=y_train,
    x_test=x_test,
    y_test=y_test,
    num_classes=num_classes,
    name='blobs',
  )


def load_dataset(name: str, data_dir: str | None = None, download: bool = False) -> Dataset:
  """Loads dataset ``name`` (one of :data:`DATASETS`) with default settings.

  ``data_dir`` and ``download`` apply to the IDX datasets (``fashion_mnist``,
  ``mnist``) and are ignored by ``digits`` and ``blobs``.

  Raises:
    ValueError: ``name`` is not in :data:`DATASETS`.
    DataError: as raised by the individual loaders.
  """
  if name == 'fashion_mnist':
    return load_fashion_mnist(data_dir=data_dir, download=download)
  if name == 'mnist':
    return load_mnist(data_dir=data_dir, download=download)
  if name == 'digits':
    return load_digits()
  if name == 'blobs':
    return make_blobs()
  raise ValueError(f'dataset must be one of {list(DATASETS)}, got {name!r}')
