"""The default input_fn, predict_fn and output_fn, as the SageMaker Chainer container has
them (sagemaker_chainer_container/serving.py and sagemaker_containers' _encoders.py), with
the differences README's "Serving" section lists: 415/406/400 instead of 500, media-type
parameters and Accept lists understood, and NPY bodies loaded without pickle.

Chainer is imported only when the model is a Chainer object.
"""
import io
import json
import os
import re
import sys

import numpy as np

from smlaunch_serving import BadRequest, UnsupportedAccept, UnsupportedContentType

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
SUPPORTED = (JSON, CSV, NPY)


def media_type(value):
    """'text/csv; charset=utf-8' -> 'text/csv' (lower case, parameters dropped)."""
    return value.split(";", 1)[0].strip().lower()


def _text(body):
    if isinstance(body, str):
        return body
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest("the body is not UTF-8 text: %s" % e)


def decode(body, content_type):
    """The body as a numpy array: float32 for JSON and CSV, the stored dtype for NPY."""
    kind = media_type(content_type)
    if kind == JSON:
        try:
            value = json.loads(_text(body))
        except ValueError as e:
            raise BadRequest("the body is not valid JSON: %s" % e)
        except RecursionError:
            raise BadRequest("the JSON body is nested too deeply")
        try:
            return np.array(value).astype(np.float32)
        except RecursionError:
            raise BadRequest("the JSON body is nested too deeply")
        except (TypeError, ValueError) as e:
            raise BadRequest("the JSON body is not an array of numbers: %s" % e)
    if kind == CSV:
        text = _text(body)
        try:
            return np.genfromtxt(io.StringIO(text), delimiter=",").astype(np.float32)
        except ValueError as e:
            raise BadRequest("the CSV body is not rows of numbers: %s" % e)
    if kind == NPY:
        fast = _load_npy_fast(body)
        if fast is not None:
            return fast
        try:
            return np.load(io.BytesIO(body), allow_pickle=False)
        except ValueError as e:
            # Object arrays need pickle, which would run code sent by the client.
            raise BadRequest("the body is not an NPY array without Python objects: %s" % e)
        except (OSError, EOFError) as e:
            raise BadRequest("the body is not an NPY array: %s" % e)
    raise UnsupportedContentType("content type %r is not supported by the default input_fn; supported: %s"
                                 % (content_type, ", ".join(SUPPORTED)))


# The header numpy's own writer produces ("{'descr': '<f4', 'fortran_order': False,
# 'shape': (2, 3), }" padded with spaces): parsed here without np.load's literal_eval,
# which costs more than the rest of a small request. Anything else goes to np.load.
_NPY_HEADER = re.compile(rb"\{'descr': '([<>|=]?[biufcmMSUV]\d*(?:\[\w+\])?)', 'fortran_order': (True|False), "
                         rb"'shape': \(((?:\d+, ?)*\d*)\), \} *\n?$")


def _load_npy_fast(body):
    """The array in an NPY body as np.load would return it, or None to use np.load."""
    view = memoryview(body)
    if len(view) < 12 or view[:6] != b"\x93NUMPY":
        return None
    major = view[6]
    if major == 1:
        size, start = int.from_bytes(view[8:10], "little"), 10
    elif major in (2, 3):
        size, start = int.from_bytes(view[8:12], "little"), 12
    else:
        return None
    match = _NPY_HEADER.match(bytes(view[start:start + size]))
    if match is None:
        return None
    try:
        dtype = np.dtype(match.group(1).decode("ascii"))
    except TypeError:
        return None
    if dtype.hasobject:
        return None
    shape = tuple(int(n) for n in match.group(3).split(b",") if n.strip())
    count = 1
    for n in shape:
        count *= n
    offset = start + size
    if len(view) - offset < count * dtype.itemsize:
        raise BadRequest("the NPY body is truncated: %d bytes of data for shape %s of %s"
                         % (len(view) - offset, shape, dtype))
    flat = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
    order = "F" if match.group(2) == b"True" else "C"
    # A copy, as np.load makes: writable, and independent of the request's buffer.
    return flat.reshape(shape, order=order).copy(order="K")


def choose_accept(accept, default_accept=None):
    """The first supported media type in an Accept value, by q then by order;
    '*/*' means `default_accept`. Raises UnsupportedAccept when there is none."""
    default_accept = default_accept or os.environ.get("SMLAUNCH_SERVE_DEFAULT_ACCEPT", JSON)
    choices = []
    for position, item in enumerate(accept.split(",")):
        parts = item.split(";")
        kind = parts[0].strip().lower()
        q = 1.0
        for p in parts[1:]:
            name, _, value = p.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if kind and q > 0:
            choices.append((-q, position, kind))
    for _, _, kind in sorted(choices):
        if kind == "*/*":
            kind = media_type(default_accept)
        if kind in SUPPORTED:
            return kind
    raise UnsupportedAccept("accept %r is not supported by the default output_fn; supported: %s"
                            % (accept, ", ".join(SUPPORTED)))


def encode(prediction, accept):
    """(body bytes, content type) for `prediction` in the chosen media type."""
    kind = choose_accept(accept)
    if kind == JSON:
        if isinstance(prediction, np.ndarray):
            prediction = prediction.tolist()
        return json.dumps(prediction, default=_to_list).encode("utf-8"), JSON
    array = np.asarray(prediction)
    if kind == CSV:
        out = io.StringIO()
        np.savetxt(out, array if array.ndim > 0 else array.reshape(1), delimiter=",", fmt="%s")
        return out.getvalue().encode("utf-8"), CSV
    fast = _npy_bytes_fast(array)
    if fast is not None:
        return fast, NPY
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue(), NPY


def _npy_bytes_fast(array):
    """np.save's bytes for a plain array (format 1.0, the same header and padding), built
    without np.save's file machinery; None for what np.save should write itself."""
    dtype = array.dtype
    if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
        return None
    fortran = bool(array.flags.f_contiguous and not array.flags.c_contiguous)
    shape = array.shape
    header = "{'descr': %r, 'fortran_order': %r, 'shape': %r, }" % (dtype.str, fortran, shape)
    if shape:
        header += " " * (21 - len(repr(shape[-1 if fortran else 0])))  # numpy's growth room
    size = len(header) + 1
    pad = 64 - ((6 + 2 + 2 + size) % 64)
    if size + pad > 65535:
        return None
    head = b"\x93NUMPY\x01\x00" + (size + pad).to_bytes(2, "little") + header.encode("latin1") + b" " * pad + b"\n"
    return head + array.tobytes(order="F" if fortran else "C")


def _to_list(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError("%s is not JSON serializable" % type(value).__name__)


def input_fn(input_data, content_type):
    return decode(input_data, content_type)


def _is_chainer(model):
    chainer = sys.modules.get("chainer")
    return chainer is not None and isinstance(model, chainer.Link)


def predict_fn(data, model):
    """Call the model; a Chainer model in test mode without backprop, as the reference does."""
    if _is_chainer(model):
        import chainer

        with chainer.using_config("train", False), chainer.no_backprop_mode():
            result = model(data)
    else:
        result = model(data)
    return to_numpy(result)


def to_numpy(result):
    array = getattr(result, "array", None)  # a chainer.Variable
    if array is not None and not isinstance(result, np.ndarray):
        result = array
    if not isinstance(result, np.ndarray) and hasattr(result, "get") and hasattr(result, "__cuda_array_interface__"):
        result = result.get()  # CuPy
    return np.asarray(result)


def output_fn(prediction, accept):
    return encode(prediction, accept)
