"""Images and PR curves inside a Summary.Value, both encodings, without a framework or an image
library: what the pictures are is read from their headers, and nothing is decoded here.

- tensorboardX, torch.utils.tensorboard and TF1 write `Summary.Value.image` (Summary.Image: the
  encoded bytes, height, width, colour space): one image a value.
- TF2's tf.summary.image (and Keras' TensorBoard callback) writes a string tensor [2 + k] =
  (width, height, k encoded images) under the "images" plugin; the plugin's metadata comes with a
  tag's first value only, so a reader remembers it per run and tag.
- PR curves (TensorBoard's pr_curves plugin, tensorboardX's add_pr_curve(_raw)): a float tensor
  [6, T] = TP, FP, TN, FN, precision, recall at T thresholds from 0 to 1.

Caps, checked before anything is allocated or decoded: an image's width and height come from its
PNG, JPEG or GIF header and must be under MAX_SIDE and MAX_PIXELS (a 2 KB PNG can claim 60000 x
60000 pixels, which a browser or PIL would then try to decode); a value may hold MAX_PER_VALUE
images; a PR tensor MAX_THRESHOLDS thresholds. A value outside them raises ValueError with the
reason, which the store reports as a Problem.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

IMAGES_PLUGIN, PR_PLUGIN = "images", "pr_curves"
MAX_SIDE = 16_384  # pixels of a width or a height
MAX_PIXELS = 25_000_000  # width x height: ~100 MB once a viewer decodes it to RGBA
MAX_PER_VALUE = 1_000  # images in one TF2 image tensor (tf.summary.image's max_outputs is 3 by default)
MAX_THRESHOLDS = 10_000  # tensorboardX caps at 127, TensorBoard's default is 201
PR_ROWS = ("tp", "fp", "tn", "fn", "precision", "recall")
_DT_FLOAT, _DT_DOUBLE, _DT_STRING = 1, 2, 7
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # JPEG frame headers


@dataclass(frozen=True)
class Picture:
    index: int  # its place in the value (TF2 tensors hold several)
    format: str  # "png", "jpeg", "gif"
    width: int
    height: int
    data: bytes  # the encoded image, as written


def image_size(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the header of a PNG, JPEG or GIF; ValueError otherwise."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ValueError("a PNG without its IHDR header")
        w, h = struct.unpack(">II", data[16:24])
        return "png", w, h
    if data[:6] in (b"GIF87a", b"GIF89a"):
        if len(data) < 10:
            raise ValueError("a GIF cut short in its header")
        w, h = struct.unpack("<HH", data[6:10])
        return "gif", w, h
    if data[:2] == b"\xff\xd8":
        return ("jpeg", *_jpeg_size(data))
    raise ValueError(f"not a PNG, JPEG or GIF image (starts {data[:8].hex() or 'empty'})")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from a JPEG's first frame header (SOFn), walking the segments before it."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise ValueError(f"a JPEG with a broken segment at byte {at}")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        if marker in _SOF:
            if at + 9 > len(data):
                break
            h, w = struct.unpack(">HH", data[at + 5:at + 9])
            return w, h
        if marker == 0xDA or length < 2:  # scan data before any frame header: not a valid JPEG
            break
        at += 2 + length
    raise ValueError("a JPEG without a frame header giving its size")


def checked(index: int, data: bytes) -> Picture:
    """A Picture of `data` when its header's size is within the caps; ValueError otherwise."""
    fmt, w, h = image_size(data)
    if w == 0 or h == 0:
        raise ValueError(f"a {fmt.upper()} of {w} x {h} pixels")
    if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
        raise ValueError(f"a {fmt.upper()} of {w} x {h} pixels, over the cap of {MAX_SIDE} a side and "
                         f"{MAX_PIXELS:,} pixels; not shown")
    return Picture(index, fmt, w, h, bytes(data))


def _dims(tensor) -> list[int]:
    if tensor.tensor_shape.unknown_rank:
        raise ValueError("a tensor of unknown rank")
    dims = [int(d.size) for d in tensor.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise ValueError(f"a tensor of shape {dims}, with an unknown size")
    return dims


def pictures_of(value) -> list[Picture]:
    """The images of a Summary.Value known to hold images: its `image`, or a TF2 image tensor."""
    if value.WhichOneof("value") == "image":
        return [checked(0, value.image.encoded_image_string)]
    t = value.tensor
    dims = _dims(t)
    if t.dtype != _DT_STRING or len(dims) != 1:
        raise ValueError(f"an image tensor of dtype enum {t.dtype} and shape {dims}; expected strings, [2 + k]")
    if dims[0] - 2 > MAX_PER_VALUE:
        raise ValueError(f"an image tensor claiming {dims[0] - 2} images, over the cap of {MAX_PER_VALUE}")
    if len(t.string_val) != dims[0] or dims[0] < 2:
        raise ValueError(f"an image tensor holding {len(t.string_val)} strings for shape {dims}")
    return [checked(i, data) for i, data in enumerate(t.string_val[2:])]


def float_tensor(tensor, max_values: int) -> np.ndarray:
    """A DT_FLOAT/DT_DOUBLE TensorProto as float64, its claimed shape checked against `max_values`
    and against the bytes present before anything is allocated."""
    dims = _dims(tensor)
    n = math.prod(dims)
    if tensor.dtype not in (_DT_FLOAT, _DT_DOUBLE):
        raise ValueError(f"a tensor of dtype enum {tensor.dtype}, expected float or double")
    if n > max_values:
        raise ValueError(f"a tensor claiming shape {dims} ({n} values), over the cap of {max_values}")
    code = "<f4" if tensor.dtype == _DT_FLOAT else "<f8"
    if tensor.tensor_content:
        if len(tensor.tensor_content) != n * np.dtype(code).itemsize:
            raise ValueError(f"a tensor of {len(tensor.tensor_content)} bytes for shape {dims}")
        a = np.frombuffer(tensor.tensor_content, code).astype(np.float64)
    else:
        vals = tensor.float_val if tensor.dtype == _DT_FLOAT else tensor.double_val
        if len(vals) > n:
            raise ValueError(f"a tensor of {len(vals)} values for shape {dims}")
        a = np.asarray(vals, dtype=np.float64)
        if 0 < a.size < n:  # TF's short form: the last value repeats
            a = np.concatenate([a, np.full(n - a.size, a[-1])])
    if a.size != n:
        raise ValueError(f"a tensor of {a.size} values for shape {dims}")
    return a.reshape(dims)


def pr_curve_of(value) -> np.ndarray:
    """The [6, T] float64 array of a pr_curves value."""
    a = float_tensor(value.tensor, 6 * MAX_THRESHOLDS)
    if a.ndim != 2 or a.shape[0] != 6 or a.shape[1] < 2:
        raise ValueError(f"a PR curve tensor of shape {list(a.shape)}, expected [6, thresholds]")
    return a
