#!/usr/bin/python3
"""bench/h2_cancel.py: the latency of one RST_STREAM among many open
HTTP/2 streams.

usage: h2_cancel.py PORT STREAMS CONNS CANCELS

Opens STREAMS streams spread over CONNS connections (prior knowledge),
all parked in the model's first-token wait, then resets CANCELS of them
one at a time, noting CLOCK_MONOTONIC (microseconds) right before each
RST_STREAM is written. Prints one JSON line per cancel:
{"request_id": ..., "rst_mono_us": ...}; the caller joins them with the
mock's mock_stream records (gone_mono_us) by request id.
"""
import json
import socket
import sys
import time

import h2.config
import h2.connection
import h2.errors


def main():
    port, nstreams, nconns, ncancels = (int(a) for a in sys.argv[1:5])
    conns = []
    for _ in range(nconns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True))
        c.initiate_connection()
        s.sendall(c.data_to_send())
        conns.append((s, c))
    streams = []
    body = b'{"model":"mock-1","stream":true,"messages":[]}'
    for i in range(nstreams):
        s, c = conns[i % nconns]
        sid = c.get_next_available_stream_id()
        rid = "h2c-%d" % i
        c.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                             (":authority", "bench"),
                             (":path", "/v1/chat/completions"),
                             ("content-type", "application/json"),
                             ("x-request-id", rid)])
        c.send_data(sid, body, end_stream=True)
        streams.append((s, c, sid, rid))
    for s, c in conns:
        s.sendall(c.data_to_send())
    # Let every stream reach the model and settle.
    time.sleep(float(sys.argv[5]) if len(sys.argv) > 5 else 3.0)
    for s, c in conns:
        s.setblocking(False)
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                c.receive_data(d)
        except BlockingIOError:
            pass
        s.setblocking(True)
    step = max(1, nstreams // ncancels)
    for k in range(ncancels):
        s, c, sid, rid = streams[(k * step) % nstreams]
        c.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
        data = c.data_to_send()
        t = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        s.sendall(data)
        print(json.dumps({"request_id": rid, "rst_mono_us": t}), flush=True)
        time.sleep(0.005)
    time.sleep(0.5)
    for s, c in conns:
        s.close()


if __name__ == "__main__":
    main()
