"""Flax NNX models behind a functional boundary: `init(key) -> params`, `apply(params, x) -> logits`.

Params are plain nested dicts of arrays (`nnx.to_pure_dict`), so they vmap over seeds, go through optax
and orbax unchanged, and `nnx.merge` rebuilds the module inside the traced function.

Multi-head outputs are one shared output layer plus a boolean mask of the logits each task may use
(`masked_logits`); a masked logit gets a large negative value, so it has zero probability.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

MODELS = ('mlp', 'cnn')
MASKED_LOGIT = -1e9


class MLP(nnx.Module):
  """Fully connected ReLU network on flattened inputs."""

  def __init__(
    self, in_features: int, hidden_sizes: Sequence[int], num_outputs: int, *, rngs: nnx.Rngs
  ):
    sizes = [in_features, *hidden_sizes]
    self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.head = nnx.Linear(sizes[-1], num_outputs, rngs=rngs)

  def __call__(self, x):
    x = x.reshape(x.shape[0], -1)
    for layer in self.hidden:
      x = jax.nn.relu(layer(x))
    return self.head(x)


class CNN(nnx.Module):
  """Small convnet: [conv3x3-relu] x2 per stage with 2x2 max-pool, then a dense layer and the head."""

  def __init__(
    self,
    in_channels: int,
    channels: Sequence[int],
    dense_size: int,
    num_outputs: int,
    spatial: tuple[int, int],
    *,
    rngs: nnx.Rngs,
  ):
    convs = []
    c_in = in_channels
    h, w = spatial
    for c in channels:
      convs.append(nnx.Conv(c_in, c, kernel_size=(3, 3), rngs=rngs))
      convs.append(nnx.Conv(c, c, kernel_size=(3, 3), rngs=rngs))
      c_in = c
      h, w = h // 2, w // 2
    self.convs = nnx.List(convs)
    self.dense = nnx.Linear(h * w * c_in, dense_size, rngs=rngs)
    self.head = nnx.Linear(dense_size, num_outputs, rngs=rngs)

  def __call__(self, x):
    for i, conv in enumerate(self.convs):
      x = jax.nn.relu(conv(x))
      if i % 2 == 1:
        x = nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    return self.head(jax.nn.relu(self.dense(x)))


class Model(NamedTuple):
  init: Callable[[jax.Array], Any]  # key -> params (nested dict of arrays)
  apply: Callable[[Any, jax.Array], jax.Array]  # (params, x [B, ...]) -> logits [B, num_outputs]


def make_model(
  name: str,
  input_shape: Sequence[int],
  num_outputs: int,
  *,
  hidden_sizes: Sequence[int] = (256, 256),
  channels: Sequence[int] = (32, 64),
  dense_size: int = 256,
) -> Model:
  input_shape = tuple(int(d) for d in input_shape)
  if name == 'mlp':
    in_features = 1
    for d in input_shape:
      in_features *= d
    build = lambda rngs: MLP(in_features, tuple(hidden_sizes), num_outputs, rngs=rngs)
  elif name == 'cnn':
    if len(input_shape) != 3:
      raise ValueError(f'model "cnn" needs image inputs [H, W, C], got input shape {input_shape}')
    build = lambda rngs: CNN(
      input_shape[-1], tuple(channels), dense_size, num_outputs, input_shape[:2], rngs=rngs
    )
  else:
    raise ValueError(f'model must be one of {list(MODELS)}, got {name!r}')

  graphdef, _ = nnx.split(nnx.eval_shape(lambda: build(nnx.Rngs(0))))

  def init(key):
    return nnx.to_pure_dict(nnx.split(build(nnx.Rngs(params=key)))[1])

  def apply(params, x):
    return nnx.merge(graphdef, params)(x)

  return Model(init=init, apply=apply)


def masked_logits(logits: jax.Array, mask: jax.Array) -> jax.Array:
  """Gives logits outside `mask` (bool, broadcastable) a large negative value."""
  return jnp.where(mask, logits, MASKED_LOGIT)
