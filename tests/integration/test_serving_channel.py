"""The worker's end of the serving channel (python/smlaunch_serving/worker.py): frames of
every size through one kept buffer, over a real socket pair, with the front's side
written here byte by byte as serve/framing.hpp lays it out."""
import os
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.environ.get("SMLAUNCH_TEST_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")), "python"))

from smlaunch_serving import worker  # noqa: E402


def frame(kind, ident, meta, body):
    meta = meta.encode()
    return worker.HEADER.pack(worker.MAGIC, kind, 0, ident, len(meta), 0, len(body)) + meta + body


class ChannelTest(unittest.TestCase):
    def setUp(self):
        ours, theirs = socket.socketpair()
        self.front = ours
        self.channel = worker.Channel(theirs.detach())
        self.addCleanup(self.front.close)
        self.addCleanup(self.channel.sock.close)

    def send_later(self, data, pieces=1):
        """Write `data` from another thread, in `pieces` writes (a frame split anywhere)."""
        step = max(1, len(data) // pieces)

        def write():
            for at in range(0, len(data), step):
                self.front.sendall(data[at:at + step])

        thread = threading.Thread(target=write)
        thread.start()
        self.addCleanup(thread.join, 30)

    def test_frames_of_every_size_in_turn(self):
        # Small, a MiB (the buffer grows and is kept), beyond what is kept (dropped after),
        # small again: each body exactly as sent, each received before the next is sent.
        sizes = [0, 100, 1 << 20, 1 << 20, (worker.Channel.KEEP + (1 << 20)), 5000]
        for ident, size in enumerate(sizes, 1):
            body = bytes((ident + i) % 251 for i in range(min(size, 4096))) * (size // 4096 + 1)
            body = body[:size]
            self.send_later(frame(worker.REQUEST, ident, "application/x-npy\napplication/json", body), pieces=7)
            kind, got_id, meta, got = self.channel.receive()
            self.assertEqual((kind, got_id, meta), (worker.REQUEST, ident, "application/x-npy\napplication/json"))
            self.assertEqual(bytes(got), body, "frame %d of %d bytes" % (ident, size))
            del got
        self.assertLessEqual(len(self.channel.buffer), worker.Channel.KEEP + (2 << 20))
        self.send_later(frame(worker.REQUEST, 99, "a\nb", b"x"))
        self.assertEqual(self.channel.receive()[1], 99)
        self.assertLessEqual(len(self.channel.buffer), worker.Channel.KEEP, "a huge request's buffer is not kept")

    def test_two_frames_in_one_write_are_two_frames(self):
        first, second = b"1" * 70000, b"2" * 10
        self.front.sendall(frame(worker.REQUEST, 1, "a\nb", first) + frame(worker.REQUEST, 2, "c\nd", second))
        kind, ident, meta, body = self.channel.receive()
        self.assertEqual((ident, meta, bytes(body)), (1, "a\nb", first))
        del body
        kind, ident, meta, body = self.channel.receive()
        self.assertEqual((ident, meta, bytes(body)), (2, "c\nd", second))

    def test_end_of_channel_is_none_even_mid_frame(self):
        self.front.sendall(frame(worker.REQUEST, 1, "a\nb", b"z" * 100)[:50])
        self.front.shutdown(socket.SHUT_WR)
        self.assertIsNone(self.channel.receive())

    def test_a_frame_that_is_not_ours_is_refused(self):
        self.front.sendall(b"GET / HTTP/1.1\r\n" + b"\0" * 32)
        with self.assertRaisesRegex(RuntimeError, "bad frame"):
            self.channel.receive()

    def test_answers_reach_the_front_whole(self):
        for size in (0, 10, 300 * 1024):
            want = worker.HEADER.size + len("application/json") + size
            got = []

            def read():
                data = b""
                while len(data) < want:
                    chunk = self.front.recv(want - len(data))
                    if not chunk:
                        break
                    data += chunk
                got.append(data)

            reader = threading.Thread(target=read)
            reader.start()
            self.channel.send(worker.RESPONSE, 5, 200, "application/json", b"r" * size)
            reader.join(30)
            data = got[0]
            magic, kind, status, ident, meta_size, _, body_size = worker.HEADER.unpack(data[:worker.HEADER.size])
            self.assertEqual((magic, kind, status, ident, meta_size, body_size),
                             (worker.MAGIC, worker.RESPONSE, 200, 5, 16, size))
            self.assertEqual(data[worker.HEADER.size + 16:], b"r" * size)


if __name__ == "__main__":
    unittest.main()
