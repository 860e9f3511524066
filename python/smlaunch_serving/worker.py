"""One model-serving worker: load the model once, then answer the front's requests.

Framing (serve/framing.hpp is the authority): every message is a 32-byte little-endian
header `<IHHQIIQ` = magic "SMLS", kind, status, id, meta size, reserved, body size; then
the metadata (UTF-8), then the body.
  request  (front -> worker): meta "<content type>\\n<accept>", body = the HTTP body
  response (worker -> front): status = HTTP status, meta = content type, body
  ready    (worker -> front): meta = JSON {"pid", "functions"} once model_fn returned
  fatal    (worker -> front): meta = what went wrong at start; the worker then exits
The worker leaves when the front closes the channel.
"""
import importlib
import json
import logging
import os
import select
import socket
import struct
import sys
import traceback

HEADER = struct.Struct("<IHHQIIQ")
MAGIC = 0x534C4D53
REQUEST, RESPONSE, READY, FATAL = 1, 2, 3, 4
FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn")

log = logging.getLogger("smlaunch.worker")


class Channel:
    """The worker's end of the front's channel. Frames are read into one buffer that is kept
    between requests (a MiB-sized body then costs no allocation and no page faults), the
    header and a small payload in one system call."""

    KEEP = 16 << 20  # a buffer up to this size is kept for the next request

    def __init__(self, fd):
        os.set_inheritable(fd, False)  # user code's subprocesses must not hold it open
        self.sock = socket.socket(fileno=fd)
        self.buffer = bytearray(64 * 1024)
        self.start = self.end = 0  # bytes received but not yet returned: buffer[start:end]
        # Wait in poll() for POLLIN, not in recv(): a recv() sleeper is also woken each time
        # the front reads an answer (the kernel's write-space wake-up of a socket pair), which
        # cost a context switch per request.
        self.poller = select.poll()
        self.poller.register(self.sock, select.POLLIN)
        # Nor its forked children (multiprocessing pools, data loaders): fork() keeps
        # every descriptor, close-on-exec or not. (The front learns of the worker's death
        # from the process anyway; this keeps the channel the worker's alone.)
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _make_room(self, need):
        """Make buffer[start:] able to hold `need` bytes, keeping what is unread. A buffer
        up to KEEP is reused (its unread bytes moved to the front); a larger one is made
        for the request that needs it and dropped once that request is read."""
        unread = self.end - self.start
        if unread == 0:
            self.start = self.end = 0
            if len(self.buffer) > self.KEEP:
                self.buffer = bytearray(64 * 1024)  # a huge request's buffer is not kept
        if self.start + need <= len(self.buffer):
            return
        size = max(need, 64 * 1024)
        if size <= len(self.buffer):
            self.buffer[:unread] = self.buffer[self.start:self.end]
        else:
            grown = bytearray(size)
            grown[:unread] = self.buffer[self.start:self.end]
            self.buffer = grown
        self.start, self.end = 0, unread

    def _fill(self, need):
        """Receive until buffer[start:end] holds `need` bytes; False at EOF."""
        self._make_room(need)
        view = memoryview(self.buffer)
        while self.end - self.start < need:
            try:
                n = self.sock.recv_into(view[self.end:], 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                self.poller.poll()
                continue
            if n == 0:
                return False
            self.end += n
        return True

    def receive(self):
        """(kind, id, meta, body), or None when the front closed the channel. `body` is a
        view of the channel's buffer, valid until the next receive()."""
        if not self._fill(HEADER.size):
            return None
        magic, kind, _status, ident, meta_size, _reserved, body_size = HEADER.unpack_from(self.buffer, self.start)
        if magic != MAGIC:
            raise RuntimeError("bad frame from the front (magic %#x)" % magic)
        if not self._fill(HEADER.size + meta_size + body_size):
            return None
        view = memoryview(self.buffer)
        at = self.start + HEADER.size
        meta = bytes(view[at:at + meta_size]).decode("utf-8", "replace")
        body = view[at + meta_size:at + meta_size + body_size]
        self.start = at + meta_size + body_size
        return kind, ident, meta, body

    def send(self, kind, ident=0, status=0, meta="", body=b""):
        meta_bytes = meta.encode("utf-8", "replace")
        head = HEADER.pack(MAGIC, kind, status, ident, len(meta_bytes), 0, len(body))
        if len(body) < 256 * 1024:
            self.sock.sendall(b"".join((head, meta_bytes, body)))
        else:
            self.sock.sendall(head + meta_bytes)
            self.sock.sendall(body)


def error_response(status, error, message, function=None):
    body = {"error": error, "message": message}
    if function:
        body["function"] = function
    return status, "application/json", json.dumps(body, separators=(",", ":")).encode("utf-8")


class Handlers:
    def __init__(self, module, model_dir):
        from smlaunch_serving import defaults

        self.user = {name: getattr(module, name) for name in FUNCTIONS if callable(getattr(module, name, None))}
        if "model_fn" not in self.user:
            raise RuntimeError("module %s (SAGEMAKER_PROGRAM) defines no model_fn(model_dir): the server "
                               "cannot load the model without it" % module.__name__)
        self.input_fn = self.user.get("input_fn", defaults.input_fn)
        self.predict_fn = self.user.get("predict_fn", defaults.predict_fn)
        self.output_fn = self.user.get("output_fn", defaults.output_fn)
        self.model = self.user["model_fn"](model_dir)

    def describe(self, name):
        return name if name in self.user else name + " (default)"

    def handle(self, content_type, accept, body):
        from smlaunch_serving import ServingError

        stage = "input_fn"
        try:
            # As the reference: JSON and CSV bodies reach input_fn as text, the rest as bytes.
            kind = content_type.split(";", 1)[0].strip().lower()
            # The default input_fn reads NPY straight from the channel's buffer (it copies
            # the array out); a user's gets bytes of its own, as from the reference.
            data = body if "input_fn" not in self.user and kind == "application/x-npy" else bytes(body)
            if kind in ("application/json", "text/csv"):
                try:
                    data = data.decode("utf-8")
                except UnicodeDecodeError:
                    pass  # the default input_fn answers 400; a user's may take bytes
            value = self.input_fn(data, content_type)
            stage = "predict_fn"
            prediction = self.predict_fn(value, self.model)
            stage = "output_fn"
            result = self.output_fn(prediction, accept)
            return self.to_response(result, accept)
        except ServingError as e:
            return error_response(e.status, type(e).__name__, str(e), self.describe(stage))
        except Exception as e:  # noqa: BLE001 - user code: any exception is the answer
            log.error("%s raised %s:\n%s", self.describe(stage), type(e).__name__, traceback.format_exc())
            return error_response(500, type(e).__name__, str(e), self.describe(stage))

    @staticmethod
    def to_response(result, accept):
        content_type = accept
        if isinstance(result, tuple) and len(result) == 2:
            result, content_type = result
        if isinstance(result, str):
            result = result.encode("utf-8")
        content_type = str(content_type)
        if any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in content_type):
            # A CR LF would put a header of its own on the wire.
            raise ValueError("output_fn returned the content type %r, with control characters" % content_type)
        if isinstance(result, (bytes, bytearray, memoryview)):
            return 200, content_type, result
        raise TypeError("output_fn returned %s; expected bytes, str or (body, content_type)" % type(result).__name__)


def configure_logging():
    level = os.environ.get("SAGEMAKER_CONTAINER_LOG_LEVEL", "20")
    try:
        level = int(level)
    except ValueError:
        level = logging.getLevelName(level.upper()) if isinstance(logging.getLevelName(level.upper()), int) else 20
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s smlaunch-worker-" + os.environ.get("SMLAUNCH_SERVE_WORKER", "?")
                        + " %(levelname)s %(message)s")


def keep_heap_for_request_buffers():
    """glibc returns a freed MiB-sized buffer to the kernel at once (mmap, or a trim of the
    heap's top), so every request of a MiB faults in ~256 fresh zeroed pages for each of its
    copies. Buffers up to 4 MiB come from the heap and up to 16 MiB of it is kept for reuse."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        libc.mallopt(m_mmap_threshold, 4 << 20)
        libc.mallopt(m_trim_threshold, 16 << 20)
    except (OSError, AttributeError):
        pass  # not glibc: its own policy stands


def main():
    configure_logging()
    keep_heap_for_request_buffers()
    try:
        fd = int(os.environ.pop("SMLAUNCH_SERVE_FD"))  # not passed on to user code's children
    except (KeyError, ValueError):
        print("smlaunch_serving: run by `smlaunch serve`, which sets SMLAUNCH_SERVE_FD", file=sys.stderr)
        return 2
    channel = Channel(fd)
    module_name = os.environ.get("SMLAUNCH_SERVE_MODULE", "")
    model_dir = os.environ.get("SMLAUNCH_SERVE_MODEL_DIR", "/opt/ml/model")
    try:
        module = importlib.import_module(module_name)
        handlers = Handlers(module, model_dir)
    except BaseException as e:  # noqa: BLE001 - reported to the front, which exits
        where = "model_fn(%r)" % model_dir if "module" in locals() else "import %s" % module_name
        message = "%s failed: %s: %s\n%s" % (where, type(e).__name__, e, traceback.format_exc(limit=-8))
        try:
            channel.send(FATAL, meta=message[-16000:])
        except OSError:
            pass
        return 3
    channel.send(READY, meta=json.dumps({"pid": os.getpid(),
                                         "functions": {n: n in handlers.user for n in FUNCTIONS}}))
    while True:
        frame = channel.receive()
        if frame is None:
            return 0
        kind, ident, meta, body = frame
        if kind != REQUEST:
            raise RuntimeError("unexpected frame kind %d from the front" % kind)
        content_type, _, accept = meta.partition("\n")
        status, response_type, payload = handlers.handle(content_type, accept, body)
        del body, frame
        channel.send(RESPONSE, ident, status, response_type, payload)
