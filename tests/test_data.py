"""Tests for cl.data: IDX parsing, dataset loaders and verified downloads.

Everything here is real: IDX files are written to tmp_path, downloads go to a
local HTTP server on 127.0.0.1, and Fashion-MNIST comes from the Debian
package directory (tests needing it are skipped when it is absent).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import pathlib
import shutil
import struct
import threading

import numpy as np
import pytest

from cl import data
from cl.data import DataError

IDX_STEMS = (
  'train-images-idx3-ubyte',
  'train-labels-idx1-ubyte',
  't10k-images-idx3-ubyte',
  't10k-labels-idx1-ubyte',
)
DEBIAN_DIR = data.DEBIAN_FASHION_MNIST_DIR
HAVE_DEBIAN_FMNIST = all(os.path.isfile(os.path.join(DEBIAN_DIR, s + '.gz')) for s in IDX_STEMS)
needs_fmnist = pytest.mark.skipif(
  not HAVE_DEBIAN_FMNIST,
  reason=f'Fashion-MNIST not installed in {DEBIAN_DIR} (apt-get install dataset-fashion-mnist)',
)

_CODES = {
  np.uint8: 0x08,
  np.int8: 0x09,
  np.int16: 0x0B,
  np.int32: 0x0C,
  np.float32: 0x0D,
  np.float64: 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
  """Serialises ``array`` in IDX format (big-endian), written independently of cl.data."""
  code = _CODES[array.dtype.type]
  header = bytes([0, 0, code, array.ndim]) + b''.join(struct.pack('>I', d) for d in array.shape)
  return header + array.astype(array.dtype.newbyteorder('>')).tobytes()


def write_idx(path: pathlib.Path, array: np.ndarray, compress: bool = False) -> pathlib.Path:
  payload = idx_bytes(array)
  path.write_bytes(gzip.compress(payload) if compress else payload)
  return path


# --------------------------------------------------------------------------
# read_idx


@pytest.mark.parametrize('dtype', list(_CODES))
@pytest.mark.parametrize('compress', [False, True])
def test_read_idx_round_trip(tmp_path, dtype, compress):
  rng = np.random.default_rng(0)
  if np.issubdtype(dtype, np.integer):
    info = np.iinfo(dtype)
    array = rng.integers(info.min, info.max, size=(3, 4, 5), endpoint=True).astype(dtype)
  else:
    array = rng.standard_normal((3, 4, 5)).astype(dtype)
  path = write_idx(tmp_path / 'a.idx', array, compress=compress)
  out = data.read_idx(path)
  assert out.dtype == np.dtype(dtype)
  assert out.dtype.isnative
  assert out.shape == (3, 4, 5)
  np.testing.assert_array_equal(out, array)
  out[0, 0, 0] = 0  # writable


def test_read_idx_detects_gzip_by_magic_not_extension(tmp_path):
  array = np.arange(12, dtype=np.uint8).reshape(3, 4)
  gz_no_ext = write_idx(tmp_path / 'compressed.idx', array, compress=True)
  raw_with_gz_ext = write_idx(tmp_path / 'raw.gz', array, compress=False)
  np.testing.assert_array_equal(data.read_idx(gz_no_ext), array)
  np.testing.assert_array_equal(data.read_idx(str(raw_with_gz_ext)), array)


def test_read_idx_one_dimensional_and_empty(tmp_path):
  labels = np.array([1, 2, 3], dtype=np.uint8)
  np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / 'l', labels)), labels)
  empty = np.zeros((0, 28, 28), dtype=np.uint8)
  assert data.read_idx(write_idx(tmp_path / 'e', empty)).shape == (0, 28, 28)


@pytest.mark.parametrize('compress', [False, True])
def test_read_idx_truncated_payload(tmp_path, compress):
  payload = idx_bytes(np.zeros((10, 28, 28), dtype=np.uint8))[:-100]
  path = tmp_path / 'truncated'
  path.write_bytes(gzip.compress(payload) if compress else payload)
  with pytest.raises(DataError) as e:
    data.read_idx(path)
  msg = str(e.value)
  assert str(path) in msg
  assert 'expected 7840 bytes' in msg and 'found 7740' in msg


def test_read_idx_extra_payload(tmp_path):
  path = tmp_path / 'long'
  path.write_bytes(idx_bytes(np.zeros((2, 2), dtype=np.int16)) + b'\x00')
  with pytest.raises(DataError, match=r'expected 8 bytes .* found 9'):
    data.read_idx(path)


@pytest.mark.parametrize(
  'header, expected',
  [
    (b'\x01\x00\x08\x01', 'first two bytes'),
    (b'\x00\x07\x08\x01', 'first two bytes'),
    (b'\x00\x00\x0a\x01', 'unknown type code 0x0a'),
    (b'\x00\x00\x08\x00', 'at least one dimension'),
    (b'\x00\x00', '4-byte IDX magic'),
    (b'\x00\x00\x08\x03\x00\x00\x00\x02', '16-byte IDX header'),
  ],
)
def test_read_idx_bad_header(tmp_path, header, expected):
  path = tmp_path / 'bad_magic.idx'
  path.write_bytes(header)
  with pytest.raises(DataError) as e:
    data.read_idx(path)
  assert str(path) in str(e.value)
  assert expected in str(e.value)


def test_read_idx_bad_gzip(tmp_path):
  garbage = tmp_path / 'garbage.gz'
  garbage.write_bytes(b'\x1f\x8b' + b'this is not deflate data' * 10)
  with pytest.raises(DataError) as e:
    data.read_idx(garbage)
  assert str(garbage) in str(e.value) and 'gzip' in str(e.value)

  truncated = tmp_path / 'truncated.gz'
  truncated.write_bytes(gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))[:-30])
  with pytest.raises(DataError) as e:
    data.read_idx(truncated)
  assert str(truncated) in str(e.value) and 'gzip' in str(e.value)


def test_read_idx_missing_file(tmp_path):
  path = tmp_path / 'nope' / 'train-images-idx3-ubyte'
  with pytest.raises(DataError) as e:
    data.read_idx(path)
  assert str(path) in str(e.value) and 'not found' in str(e.value)


# --------------------------------------------------------------------------
# Fashion-MNIST / MNIST loading from disk


@pytest.fixture(scope='module')
def debian_fmnist():
  if not HAVE_DEBIAN_FMNIST:
    pytest.skip(
      f'Fashion-MNIST not installed in {DEBIAN_DIR} (apt-get install dataset-fashion-mnist)'
    )
  return data.load_fashion_mnist(data_dir=DEBIAN_DIR)


def check_mnist_like(ds: data.Dataset, name: str) -> None:
  assert ds.name == name and ds.num_classes == 10
  assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
  assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
  assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
  assert ds.y_train.dtype == np.int32 and ds.y_test.dtype == np.int32
  for x in (ds.x_train, ds.x_test):
    assert x.min() == 0.0 and x.max() == 1.0
  np.testing.assert_array_equal(np.bincount(ds.y_train, minlength=10), [6000] * 10)
  np.testing.assert_array_equal(np.bincount(ds.y_test, minlength=10), [1000] * 10)


@needs_fmnist
def test_load_fashion_mnist_debian(debian_fmnist):
  check_mnist_like(debian_fmnist, 'fashion_mnist')
  # Pixel values are exact multiples of 1/255.
  sample = debian_fmnist.x_train[:100] * 255.0
  np.testing.assert_allclose(sample, np.round(sample), atol=1e-4)


@needs_fmnist
def test_load_fashion_mnist_default_search_uses_debian_dir(debian_fmnist, tmp_path, monkeypatch):
  monkeypatch.setenv(data.CACHE_ENV_VAR, str(tmp_path / 'cache-root'))
  ds = data.load_dataset('fashion_mnist')
  np.testing.assert_array_equal(ds.y_test, debian_fmnist.y_test)
  assert not (tmp_path / 'cache-root').exists()


def test_empty_data_dir_lists_places_searched(tmp_path):
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(DataError) as e:
    data.load_fashion_mnist(data_dir=str(empty), download=False)
  msg = str(e.value)
  assert 'Searched' in msg and str(empty) in msg
  for stem in IDX_STEMS:
    assert stem in msg
  assert 'apt-get install dataset-fashion-mnist' in msg
  assert 'data_dir' in msg and 'download=True' in msg


def test_missing_mnist_lists_cache_and_hints(tmp_path, monkeypatch):
  monkeypatch.setenv(data.CACHE_ENV_VAR, str(tmp_path / 'root'))
  assert data.default_cache_dir('mnist') == str(tmp_path / 'root' / 'mnist')
  with pytest.raises(DataError) as e:
    data.load_mnist()
  msg = str(e.value)
  assert str(tmp_path / 'root' / 'mnist') in msg and 'does not exist' in msg
  assert 'download=True' in msg


def test_default_cache_dir_without_env(monkeypatch):
  monkeypatch.delenv(data.CACHE_ENV_VAR, raising=False)
  expected = os.path.join(os.path.expanduser('~'), '.cache', 'cljax', 'fashion_mnist')
  assert data.default_cache_dir('fashion_mnist') == expected


def _write_fake_mnist(directory: pathlib.Path, n_train=60000, n_test=10000, train_labels=None):
  """Writes IDX files into ``directory`` (labels gzip-compressed without a .gz name)."""
  directory.mkdir(parents=True, exist_ok=True)
  write_idx(directory / IDX_STEMS[0], np.zeros((n_train, 28, 28), dtype=np.uint8))
  labels = train_labels if train_labels is not None else np.zeros(n_train, dtype=np.uint8)
  write_idx(directory / IDX_STEMS[1], labels, compress=True)
  write_idx(directory / IDX_STEMS[2], np.zeros((n_test, 28, 28), dtype=np.uint8))
  write_idx(directory / IDX_STEMS[3], np.zeros(n_test, dtype=np.uint8), compress=True)


def test_wrong_image_count_names_file(tmp_path):
  _write_fake_mnist(tmp_path, n_train=100, train_labels=np.zeros(100, dtype=np.uint8))
  with pytest.raises(DataError) as e:
    data.load_mnist(data_dir=str(tmp_path))
  assert str(tmp_path / IDX_STEMS[0]) in str(e.value)
  assert '(60000, 28, 28)' in str(e.value)


def test_label_count_mismatch_names_file(tmp_path):
  _write_fake_mnist(tmp_path, n_train=100, train_labels=np.zeros(99, dtype=np.uint8))
  with pytest.raises(DataError) as e:
    data.load_mnist(data_dir=str(tmp_path))
  assert str(tmp_path / IDX_STEMS[1]) in str(e.value)
  assert 'as many labels as images' in str(e.value)


def test_label_out_of_range_names_file(tmp_path):
  labels = np.zeros(60000, dtype=np.uint8)
  labels[123] = 10
  _write_fake_mnist(tmp_path, train_labels=labels)
  with pytest.raises(DataError) as e:
    data.load_mnist(data_dir=str(tmp_path))
  assert str(tmp_path / IDX_STEMS[1]) in str(e.value)
  assert 'labels in [0, 10)' in str(e.value)


def test_wrong_dtype_names_file(tmp_path):
  _write_fake_mnist(tmp_path)
  write_idx(tmp_path / IDX_STEMS[2], np.zeros((10000, 28, 28), dtype=np.int16))
  with pytest.raises(DataError) as e:
    data.load_mnist(data_dir=str(tmp_path))
  assert str(tmp_path / IDX_STEMS[2]) in str(e.value) and 'uint8' in str(e.value)


def test_valid_synthetic_idx_dir_loads(tmp_path):
  labels = (np.arange(60000) % 10).astype(np.uint8)
  _write_fake_mnist(tmp_path, train_labels=labels)
  ds = data.load_mnist(data_dir=str(tmp_path))
  assert ds.name == 'mnist'
  assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_train.dtype == np.float32
  np.testing.assert_array_equal(ds.y_train, labels.astype(np.int32))


# --------------------------------------------------------------------------
# Downloads from a local HTTP server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
  def log_message(self, format, *args):  # noqa: A002 - signature fixed by base class
    pass


@pytest.fixture
def http_dir(tmp_path):
  """Serves a fresh directory on 127.0.0.1; yields (directory, base_url)."""
  root = tmp_path / 'served'
  root.mkdir()
  handler = functools.partial(_QuietHandler, directory=str(root))
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(
    target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True
  )
  thread.start()
  try:
    yield root, f'http://127.0.0.1:{server.server_address[1]}/files'
  finally:
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def no_debian(tmp_path, monkeypatch):
  """Pretends the Debian package is not installed, so downloads are needed."""
  monkeypatch.setattr(data, 'DEBIAN_FASHION_MNIST_DIR', str(tmp_path / 'no-debian-package'))


def _serve_debian_copies(http_dir) -> pathlib.Path:
  root, _ = http_dir
  files = root / 'files'
  files.mkdir()
  for stem in IDX_STEMS:
    shutil.copyfile(os.path.join(DEBIAN_DIR, stem + '.gz'), files / (stem + '.gz'))
  return files


def _listing(directory: pathlib.Path) -> list[str]:
  return sorted(os.listdir(directory)) if directory.exists() else []


@needs_fmnist
def test_download_fashion_mnist_verifies(http_dir, tmp_path, debian_fmnist, no_debian):
  _serve_debian_copies(http_dir)
  cache = tmp_path / 'cache'
  ds = data.load_fashion_mnist(download=True, cache_dir=str(cache), base_url=http_dir[1])
  assert ds.name == 'fashion_mnist'
  np.testing.assert_array_equal(ds.y_train, debian_fmnist.y_train)
  np.testing.assert_array_equal(ds.x_test, debian_fmnist.x_test)
  assert _listing(cache) == sorted(s + '.gz' for s in IDX_STEMS)
  for stem in IDX_STEMS:
    raw = gzip.decompress((cache / (stem + '.gz')).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == data.FASHION_MNIST_CHECKSUMS[stem].raw_sha256

  # The verified cache is a complete IDX directory: loading it needs no server.
  shutil.rmtree(http_dir[0] / 'files')
  again = data.load_fashion_mnist(data_dir=str(cache), download=False, base_url=http_dir[1])
  np.testing.assert_array_equal(again.y_test, debian_fmnist.y_test)


@needs_fmnist
def test_download_corrupted_label_file_is_rejected(http_dir, tmp_path, no_debian):
  files = _serve_debian_copies(http_dir)
  stem = 't10k-labels-idx1-ubyte'
  raw = bytearray(gzip.decompress((files / (stem + '.gz')).read_bytes()))
  raw[8 + 1234] ^= 0x01  # flip one bit of one label in the payload
  (files / (stem + '.gz')).write_bytes(gzip.compress(bytes(raw)))
  bad_hash = hashlib.sha256(raw).hexdigest()

  cache = tmp_path / 'cache'
  with pytest.raises(DataError) as e:
    data.load_fashion_mnist(download=True, cache_dir=str(cache), base_url=http_dir[1] + '/')
  msg = str(e.value)
  assert 'SHA-256 mismatch' in msg
  assert f'{http_dir[1]}/{stem}.gz' in msg
  assert data.FASHION_MNIST_CHECKSUMS[stem].raw_sha256 in msg and bad_hash in msg
  assert _listing(cache) == []  # nothing, not even the verified files, is kept


@needs_fmnist
def test_download_checks_gz_digest(http_dir, tmp_path):
  # MNIST pins the digests of the .gz files; Fashion-MNIST bytes must fail them.
  _serve_debian_copies(http_dir)
  cache = tmp_path / 'cache'
  with pytest.raises(DataError) as e:
    data.load_mnist(download=True, cache_dir=str(cache), base_url=http_dir[1])
  msg = str(e.value)
  assert 'SHA-256 mismatch' in msg and http_dir[1] in msg
  assert any(c.gz_sha256 in msg for c in data.MNIST_CHECKSUMS.values())
  assert _listing(cache) == []


@needs_fmnist
def test_download_with_checksum_overrides(http_dir, tmp_path):
  files = _serve_debian_copies(http_dir)
  overrides = {
    stem: {'gz_sha256': hashlib.sha256((files / (stem + '.gz')).read_bytes()).hexdigest()}
    for stem in IDX_STEMS
  }
  overrides['t10k-labels-idx1-ubyte.gz'] = data.FileChecksum(
    raw_sha256=data.FASHION_MNIST_CHECKSUMS['t10k-labels-idx1-ubyte'].raw_sha256
  )
  del overrides['t10k-labels-idx1-ubyte']
  ds = data.load_mnist(
    download=True, cache_dir=str(tmp_path / 'c'), base_url=http_dir[1], checksums=overrides
  )
  assert ds.name == 'mnist' and ds.x_train.shape == (60000, 28, 28, 1)


def test_download_refuses_without_checksums(http_dir, tmp_path):
  cache = tmp_path / 'cache'
  with pytest.raises(DataError) as e:
    data.load_mnist(
      download=True,
      cache_dir=str(cache),
      base_url=http_dir[1],
      checksums={stem: data.FileChecksum() for stem in IDX_STEMS},
    )
  assert 'refusing to download' in str(e.value)
  assert _listing(cache) == []


def test_download_missing_remote_file(http_dir, tmp_path, no_debian):
  cache = tmp_path / 'cache'
  with pytest.raises(DataError) as e:
    data.load_fashion_mnist(download=True, cache_dir=str(cache), base_url=http_dir[1])
  assert f'{http_dir[1]}/train-images-idx3-ubyte.gz' in str(e.value)
  assert 'download failed' in str(e.value)
  assert _listing(cache) == []


def test_bad_checksum_override_rejected():
  with pytest.raises(ValueError, match='unknown file'):
    data.load_mnist(download=True, checksums={'foo': {'gz_sha256': '0' * 64}})
  with pytest.raises(ValueError, match='64 hex digits'):
    data.FileChecksum(gz_sha256='abc')


# --------------------------------------------------------------------------
# digits, blobs, load_dataset


def test_load_digits():
  ds = data.load_digits()
  assert ds.name == 'digits' and ds.num_classes == 10
  assert ds.x_train.shape == (1347, 8, 8, 1) and ds.x_test.shape == (450, 8, 8, 1)
  assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
  assert 0.0 <= ds.x_train.min() and ds.x_train.max() == 1.0
  # Stratified: each class is split 75/25 up to rounding.
  train_counts = np.bincount(ds.y_train, minlength=10)
  test_counts = np.bincount(ds.y_test, minlength=10)
  assert np.abs(test_counts - 0.25 * (train_counts + test_counts)).max() <= 1.0
  again = data.load_digits()
  for field in ('x_train', 'y_train', 'x_test', 'y_test'):
    np.testing.assert_array_equal(getattr(ds, field), getattr(again, field))


def _nearest_mean_accuracy(ds: data.Dataset) -> float:
  means = np.stack([ds.x_train[ds.y_train == k].mean(0) for k in range(ds.num_classes)])
  dists = ((ds.x_test[:, None, :] - means[None]) ** 2).sum(-1)
  return float((dists.argmin(1) == ds.y_test).mean())


@pytest.mark.parametrize(
  'kwargs',
  [
    {},
    {'num_classes': 10, 'num_features': 2},
    {'num_classes': 10, 'num_features': 8},
    {'num_classes': 3, 'num_features': 1},
    {'num_classes': 5, 'num_features': 1},
  ],
)
def test_make_blobs_separable(kwargs):
  ds = data.make_blobs(**kwargs)
  k = kwargs.get('num_classes', 4)
  d = kwargs.get('num_features', 2)
  assert ds.name == 'blobs' and ds.num_classes == k
  assert ds.x_train.shape == (200 * k, d) and ds.x_test.shape == (100 * k, d)
  assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
  np.testing.assert_array_equal(np.bincount(ds.y_train), [200] * k)
  np.testing.assert_array_equal(np.bincount(ds.y_test), [100] * k)
  assert _nearest_mean_accuracy(ds) > 0.95


def test_make_blobs_deterministic():
  a = data.make_blobs(seed=3)
  b = data.make_blobs(seed=3)
  c = data.make_blobs(seed=4)
  np.testing.assert_array_equal(a.x_train, b.x_train)
  np.testing.assert_array_equal(a.y_test, b.y_test)
  assert not np.array_equal(a.x_train, c.x_train)


def test_make_blobs_rejects_bad_args():
  with pytest.raises(ValueError):
    data.make_blobs(num_classes=0)
  with pytest.raises(ValueError):
    data.make_blobs(spread=-1.0)


def test_load_dataset_dispatch_and_unknown_name():
  assert data.load_dataset('blobs').name == 'blobs'
  assert data.load_dataset('digits').name == 'digits'
  with pytest.raises(ValueError) as e:
    data.load_dataset('cifar')
  assert str(e.value) == (
    "dataset must be one of ['fashion_mnist', 'mnist', 'digits', 'blobs'], got 'cifar'"
  )


def test_dataset_validates_contract():
  x = np.zeros((3, 2), dtype=np.float32)
  y = np.zeros(3, dtype=np.int32)
  ok = data.Dataset(x, y, x, y, num_classes=2, name='t')
  assert 't' in repr(ok)
  with pytest.raises(ValueError, match='float32'):
    data.Dataset(x.astype(np.float64), y, x, y, num_classes=2, name='t')
  with pytest.raises(ValueError, match='int32'):
    data.Dataset(x, y.astype(np.int64), x, y, num_classes=2, name='t')
  with pytest.raises(ValueError, match=r'\[0, 2\)'):
    data.Dataset(x, y + 2, x, y, num_classes=2, name='t')


def test_missing_fashion_mnist_lists_every_place(tmp_path, monkeypatch, no_debian):
  monkeypatch.setenv(data.CACHE_ENV_VAR, str(tmp_path / 'root'))
  with pytest.raises(DataError) as e:
    data.load_fashion_mnist()
  msg = str(e.value)
  assert data.DEBIAN_FASHION_MNIST_DIR in msg
  assert str(tmp_path / 'root' / 'fashion_mnist') in msg
  assert 'apt-get install dataset-fashion-mnist' in msg
