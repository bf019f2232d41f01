#!/usr/bin/python3
"""Writes seeds for fuzz_h2 into tests/fuzz/corpus/h2: byte 0 is the
delivery mode, the rest frames a client sends after the preface, made
with python3-h2 and hyperframe."""
import os
import struct

import h2.config
import h2.connection
from hyperframe.frame import (ContinuationFrame, GoAwayFrame, HeadersFrame,
                              PingFrame, PriorityFrame, RstStreamFrame,
                              SettingsFrame, WindowUpdateFrame)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "h2")
BODY = b'{"model":"mock-1","stream":true,"messages":[]}'


def conn():
    c = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    c.data_to_send()            # the preface: the target sends its own
    return c


def req(c, path="/v1/chat/completions", body=BODY, end=True, extra=()):
    sid = c.get_next_available_stream_id()
    hdrs = [(":method", "POST" if body is not None else "GET"),
            (":scheme", "http"), (":authority", "fuzz"), (":path", path),
            ("content-type", "application/json")] + list(extra)
    c.send_headers(sid, hdrs, end_stream=body is None)
    if body is not None:
        c.send_data(sid, body, end_stream=end)
    return sid


def settings():
    return SettingsFrame(0).serialize()


def write(name, mode, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([mode]) + data)


def main():
    os.makedirs(OUT, exist_ok=True)
    c = conn()
    req(c)
    write("post_stream", 0, settings() + c.data_to_send())

    c = conn()
    req(c, body=None, path="/v1/models")
    write("get_models_split", 1, settings() + c.data_to_send())

    c = conn()
    for _ in range(3):
        req(c)
    write("three_streams", 0, settings() + c.data_to_send())

    c = conn()
    s = req(c)
    c.reset_stream(s)
    write("rapid_reset", 0, settings() + c.data_to_send())

    c = conn()
    s = req(c, body=BODY[:10], end=False)
    c.reset_stream(s)
    write("rst_in_body", 2, settings() + c.data_to_send())

    c = conn()
    req(c)
    c.close_connection()
    write("goaway", 0x20, settings() + c.data_to_send())

    c = conn()
    req(c, path="/p/x")
    write("peer_route", 0, settings() + c.data_to_send())

    c = conn()
    req(c, path="/i/x", extra=[("x-request-id", "abc")])
    write("inject_route", 3, settings() + c.data_to_send())

    c = conn()
    req(c, path="/d/x")
    write("drain_leaves", 0x04 | 0x20, settings() + c.data_to_send())

    # Raw frames the h2 library would not send.
    enc = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True)).encoder
    hf = HeadersFrame(1)
    hf.data = enc.encode([(":method", "GET"), (":scheme", "http"),
                          (":authority", "x"), (":path", "/")])
    cf = ContinuationFrame(1)
    cf.data = enc.encode([("x-a", "b")])
    cf.flags.add("END_HEADERS")
    write("continuation", 0, settings() + hf.serialize() + cf.serialize())
    frames = [PingFrame(0, opaque_data=struct.pack(">Q", 7)).serialize(),
              PriorityFrame(3, depends_on=1, stream_weight=10).serialize(),
              WindowUpdateFrame(0, window_increment=1000).serialize(),
              RstStreamFrame(5, error_code=8).serialize(),
              GoAwayFrame(0, last_stream_id=0, error_code=0).serialize()]
    write("control_frames", 1, settings() + b"".join(frames))


if __name__ == "__main__":
    main()
