"""smlaunch's model-serving worker and its default handlers.

`smlaunch serve` starts `python -m smlaunch_serving` once per worker. Each worker imports
the user's module (SAGEMAKER_PROGRAM), calls its `model_fn(model_dir)` once, then answers
the requests the C++ front sends it over a Unix socket (see worker.py for the framing),
chaining `input_fn` -> `predict_fn` -> `output_fn`; the defaults for any the module leaves
out are in defaults.py.

User code may raise these to choose the HTTP status of its answer.
"""


class ServingError(Exception):
    """An error with an HTTP status; its message goes to the client."""

    status = 500


class BadRequest(ServingError):
    """The body could not be decoded (400)."""

    status = 400


class UnsupportedContentType(ServingError):
    """The request's content type is not one the input_fn decodes (415)."""

    status = 415


class UnsupportedAccept(ServingError):
    """No content type in Accept is one the output_fn encodes (406)."""

    status = 406


# The reference's name (sagemaker_containers' _errors.UnsupportedFormatError) for code
# written against it: treated as an unsupported content type.
UnsupportedFormatError = UnsupportedContentType
