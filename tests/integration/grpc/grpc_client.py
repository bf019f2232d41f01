#!/usr/bin/python3
"""One gRPC server-streaming call with a real client library, for the
integration tests (tests/integration/test_grpc.c), which assert on what it
prints: one JSON line {"event": "grpc_result", ...} with the messages, the
status code and message, the initial and trailing metadata, and the
monotonic time (CLOCK_MONOTONIC, microseconds, the clock of the mock's and
the proxy's records) at which it cancelled, if it did.

By default the call is made with grpcio (Debian's python3-grpcio, generic
calls on raw bytes: no protoc). With --raw-timeout the call is made with
the h2 library over a plain socket instead, so that the request can carry a
grpc-timeout of the caller's choosing and the client never gives up by
itself: that is how the server's own deadline handling is seen.

With --parallel N, N calls go at once on one channel (one HTTP/2
connection) and "calls" lists each one's messages, code and trailing
metadata.

usage: grpc_client.py HOST:PORT METHOD [--metadata K=V]... [--timeout-ms N]
                      [--cancel-after N] [--raw-timeout VALUE] [--request S]
                      [--parallel N]
"""
import argparse
import json
import socket
import sys
import threading
import time


def mono_us():
    return time.monotonic_ns() // 1000


def decode_messages(buf):
    """Splits gRPC length-prefixed messages; the rest, if any, is returned."""
    out = []
    while len(buf) >= 5:
        n = int.from_bytes(buf[1:5], "big")
        if len(buf) < 5 + n:
            break
        out.append(buf[5:5 + n].decode("utf-8", "backslashreplace"))
        buf = buf[5 + n:]
    return out, buf


def call_grpcio(args, metadata, result):
    import grpc

    channel = grpc.insecure_channel(args.addr)
    method = channel.unary_stream(args.method, request_serializer=None,
                                  response_deserializer=None)
    timeout = args.timeout_ms / 1000.0 if args.timeout_ms else None
    call = method(args.request.encode(), metadata=metadata, timeout=timeout)
    try:
        for msg in call:
            result["messages"].append(msg.decode("utf-8", "backslashreplace"))
            if (args.cancel_after is not None and
                    len(result["messages"]) == args.cancel_after):
                result["cancel_mono_us"] = mono_us()
                call.cancel()
                break
    except grpc.RpcError:
        pass
    result["code"] = call.code().name
    result["details"] = call.details()
    result["initial"] = {k: v for k, v in (call.initial_metadata() or ())}
    result["trailing"] = {k: v for k, v in (call.trailing_metadata() or ())}
    channel.close()


def call_parallel(args, metadata, result):
    import grpc

    channel = grpc.insecure_channel(args.addr)
    method = channel.unary_stream(args.method, request_serializer=None,
                                  response_deserializer=None)
    calls = [None] * args.parallel

    def one(i):
        md = list(metadata) + [("x-request-id", "par-%d" % i)]
        call = method(args.request.encode(), metadata=md)
        msgs = []
        try:
            for msg in call:
                msgs.append(msg.decode("utf-8", "backslashreplace"))
        except grpc.RpcError:
            pass
        calls[i] = {"messages": msgs, "code": call.code().name,
                    "trailing": {k: v for k, v in
                                 (call.trailing_metadata() or ())}}

    threads = [threading.Thread(target=one, args=(i,))
               for i in range(args.parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result["calls"] = calls
    result["code"] = ("OK" if all(c["code"] == "OK" for c in calls)
                      else "FAILED")
    channel.close()


def call_raw_h2(args, metadata, result):
    import h2.config
    import h2.connection
    import h2.events

    host, port = args.addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True,
                                         header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    headers = [(":method", "POST"), (":scheme", "http"),
               (":authority", args.addr), (":path", args.method),
               ("content-type", "application/grpc"), ("te", "trailers"),
               ("grpc-timeout", args.raw_timeout)] + list(metadata)
    conn.send_headers(sid, headers)
    body = args.request.encode()
    conn.send_data(sid, b"\0" + len(body).to_bytes(4, "big") + body,
                   end_stream=True)
    sock.sendall(conn.data_to_send())
    data = b""
    done = False
    while not done:
        chunk = sock.recv(65536)
        if not chunk:
            result["details"] = "connection closed"
            break
        for ev in conn.receive_data(chunk):
            if isinstance(ev, h2.events.ResponseReceived):
                result["initial"] = dict(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                data += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length,
                                               sid)
            elif isinstance(ev, h2.events.TrailersReceived):
                result["trailing"] = dict(ev.headers)
            elif isinstance(ev, h2.events.StreamReset):
                result["details"] = "RST_STREAM %d" % ev.error_code
                done = True
            elif isinstance(ev, h2.events.StreamEnded):
                done = True
        sock.sendall(conn.data_to_send())
    sock.close()
    result["messages"], _ = decode_messages(data)
    status = result["trailing"].get("grpc-status")
    codes = {0: "OK", 1: "CANCELLED", 3: "INVALID_ARGUMENT",
             4: "DEADLINE_EXCEEDED", 13: "INTERNAL", 14: "UNAVAILABLE"}
    if status is not None:
        result["code"] = codes.get(int(status), status)
        result["details"] = result["trailing"].get("grpc-message")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("method")
    p.add_argument("--metadata", action="append", default=[])
    p.add_argument("--timeout-ms", type=int, default=0)
    p.add_argument("--cancel-after", type=int, default=None)
    p.add_argument("--raw-timeout", default=None)
    p.add_argument("--request", default="hello")
    p.add_argument("--parallel", type=int, default=0)
    args = p.parse_args()
    metadata = [tuple(m.split("=", 1)) for m in args.metadata]
    result = {"event": "grpc_result", "client": "python-grpcio",
              "messages": [], "code": None, "details": None, "initial": {},
              "trailing": {}, "cancel_mono_us": None}
    start = mono_us()
    if args.parallel > 0:
        call_parallel(args, metadata, result)
    elif args.raw_timeout is not None:
        result["client"] = "python-h2"
        call_raw_h2(args, metadata, result)
    else:
        call_grpcio(args, metadata, result)
    result["elapsed_ms"] = (mono_us() - start) / 1000.0
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
