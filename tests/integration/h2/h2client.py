#!/usr/bin/python3
"""An HTTP/2 client for test_h2.c, frame by frame, with python3-h2.

usage: h2client.py SCENARIO PORT [ARGS...]

Every line it prints is a JSON object with an "event" member; the test
reads them as records. It ends with {"event":"h2_done",...} when the
scenario ran to its end, or {"event":"h2_error",...}.
"""
import collections
import json
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import (ContinuationFrame, DataFrame, HeadersFrame,
                              PingFrame, SettingsFrame)

BODY = b'{"model":"mock-1","stream":true,"messages":[{"role":"user","content":"hi"}]}'


def out(event, **kw):
    kw["event"] = event
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


class Client:
    """One connection and what came back on each stream."""

    def __init__(self, port, window=None, tls=None):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cfg = h2.config.H2Configuration(client_side=True,
                                        header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings(
                {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.status = {}
        self.body = {}
        self.ended = {}
        self.reset = {}
        self.goaway = None
        self.goaway_seen = False
        self.closed = False
        self.auto_window = window is None

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, headers=None, body=BODY, end=True,
                path="/v1/chat/completions", flush=True):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", "POST"), (":scheme", "http"),
                (":authority", "127.0.0.1"), (":path", path),
                ("content-type", "application/json")]
        hdrs += headers or []
        if body is None:
            self.conn.send_headers(sid, hdrs, end_stream=True)
        else:
            self.conn.send_headers(sid, hdrs)
            self.conn.send_data(sid, body, end_stream=end)
        if flush:
            self.flush()
        self.body[sid] = b""
        return sid

    def pump(self, timeout):
        """Reads what arrives within timeout seconds; False once closed."""
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        except OSError:
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            # After the server's GOAWAY (the state machine is then
            # CLOSED), python3-h2 takes any further frame as an error,
            # losing the GOAWAY event when both came in one read.
            if self.conn.state_machine.state != \
                    h2.connection.ConnectionState.CLOSED:
                raise
            self.goaway_seen = True
            self.closed = True
            return False
        for ev in events:
            if isinstance(ev, h2.events.ResponseReceived):
                self.status[ev.stream_id] = int(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                self.body[ev.stream_id] = self.body.get(ev.stream_id, b"") + ev.data
                if self.auto_window and ev.flow_controlled_length:
                    self.conn.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.ended[ev.stream_id] = True
            elif isinstance(ev, h2.events.StreamReset):
                self.reset[ev.stream_id] = int(ev.error_code)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = int(ev.error_code)
                self.goaway_seen = True
        try:
            self.flush()
        except OSError:
            self.closed = True
            return False
        return True

    def wait(self, cond, timeout):
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            if not self.pump(min(0.2, max(0.01, end - time.monotonic()))):
                break
        return cond()

    def events(self, sid):
        return self.body.get(sid, b"").count(b"\n\n")

    def rst(self, sid, code=h2.errors.ErrorCodes.CANCEL):
        self.conn.reset_stream(sid, error_code=code)
        self.flush()

    def report(self, sid):
        out("h2_stream", stream=sid, status=self.status.get(sid),
            events=self.events(sid), ended=bool(self.ended.get(sid)),
            reset=self.reset.get(sid),
            body=self.body.get(sid, b"").decode("utf-8", "replace")[-300:])

    def close_fin(self):
        self.sock.shutdown(socket.SHUT_WR)
        self.sock.close()

    def close_rst(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
        self.sock.close()


def tokens(n, first_ms=0, interval_ms=10):
    return [("x-mock-tokens", str(n)), ("x-mock-first-token-ms", str(first_ms)),
            ("x-mock-interval-ms", str(interval_ms))]


def scenario_streams(port, n="4", ntok="5"):
    """n concurrent streams on one connection, each read to its end."""
    c = Client(port)
    sids = [c.request(tokens(int(ntok))) for _ in range(int(n))]
    c.wait(lambda: all(c.ended.get(s) or s in c.reset for s in sids), 20)
    for s in sids:
        c.report(s)
    out("h2_done", goaway=c.goaway)


def scenario_rst(port, phase, keep="1"):
    """RST_STREAM on one stream in a phase while another stream goes on."""
    c = Client(port, window=0 if phase == "paused" else None)
    other = None
    if keep == "1" and phase != "paused":
        other = c.request(tokens(20, 300, 20))
    if phase == "body":
        sid = c.request(tokens(5), body=BODY[:10], end=False)
        c.pump(0.3)
        out("h2_sent", stream=sid)
        time.sleep(0.3)
    elif phase in ("connecting", "waiting"):
        sid = c.request(tokens(5, 60000))
        c.wait(lambda: False, 0.5)
        out("h2_sent", stream=sid)
    elif phase == "streaming":
        sid = c.request(tokens(100000, 0, 20))
        c.wait(lambda: c.events(sid) >= 3, 10)
        out("h2_sent", stream=sid, events=c.events(sid))
    elif phase == "paused":
        sid = c.request(tokens(100000, 0, 1))
        c.wait(lambda: sid in c.status, 10)
        # Window 0: nothing of the body can come; the proxy's buffer for
        # the stream fills and its upstream is paused.
        c.wait(lambda: False, 1.0)
        out("h2_sent", stream=sid, got=len(c.body.get(sid, b"")))
        other = c.request(tokens(3))
        c.conn.increment_flow_control_window(1 << 20, other)
        c.flush()
    else:
        raise SystemExit("unknown phase " + phase)
    c.rst(sid)
    if other is not None:
        if phase == "paused":
            # Its body needs the stream window the settings keep at 0.
            c.conn.update_settings(
                {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
            c.flush()
        c.wait(lambda: c.ended.get(other) or other in c.reset, 15)
        c.report(other)
    c.pump(0.2)
    out("h2_done", goaway=c.goaway, closed=c.closed)


def scenario_leave(port, how, n="3"):
    """n streams waiting for their first byte, then the connection goes:
    fin, rst, or goaway (a GOAWAY frame, then a FIN)."""
    c = Client(port)
    sids = [c.request(tokens(5, 60000)) for _ in range(int(n))]
    c.wait(lambda: False, 0.6)
    out("h2_sent", streams=sids)
    if how == "goaway":
        c.conn.close_connection()
        c.flush()
        time.sleep(0.2)
        c.close_fin()
    elif how == "fin":
        c.close_fin()
    else:
        c.close_rst()
    out("h2_done")


def scenario_rapid_reset(port, n="3000"):
    """HEADERS then RST_STREAM at once, n times, in batches; then one
    ordinary stream shows whether the connection still serves."""
    c = Client(port)
    sent = 0
    try:
        while sent < int(n):
            for _ in range(200):
                sid = c.request(tokens(1), body=None, flush=False)
                c.conn.reset_stream(sid)
                sent += 1
            c.flush()
            c.pump(0.001)
    except (OSError, h2.exceptions.ProtocolError) as e:
        out("h2_note", error=str(e))
    c.pump(0.5)
    out("h2_flood", sent=sent, goaway=c.goaway, goaway_seen=c.goaway_seen,
        closed=c.closed)
    out("h2_done", goaway=c.goaway, closed=c.closed)


def raw_preface(sock):
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize())


def read_until_closed(sock, timeout):
    """Reads until the peer closes; returns (bytes read, closed)."""
    sock.settimeout(timeout)
    total = 0
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            d = sock.recv(65536)
            if not d:
                return total, True
            total += len(d)
    except socket.timeout:
        return total, False
    except OSError:
        return total, True
    return total, False


def scenario_flood(port, kind, n="5000"):
    """Raw frames: ping, settings, empty_data, continuation; the proxy must
    close the connection (GOAWAY) rather than serve the flood."""
    s = socket.create_connection(("127.0.0.1", port))
    raw_preface(s)
    n = int(n)
    sent = 0
    enc = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True)).encoder
    try:
        if kind == "ping":
            buf = b"".join(PingFrame(0, opaque_data=struct.pack(">Q", i)).serialize()
                           for i in range(n))
            s.sendall(buf)
            sent = n
        elif kind == "settings":
            buf = b"".join(SettingsFrame(0, settings={4: 65535}).serialize()
                           for _ in range(n))
            s.sendall(buf)
            sent = n
        elif kind == "empty_data":
            hf = HeadersFrame(1)
            hf.data = enc.encode([(":method", "POST"), (":scheme", "http"),
                                  (":authority", "x"),
                                  (":path", "/v1/chat/completions")])
            hf.flags.add("END_HEADERS")
            buf = hf.serialize() + b"".join(DataFrame(1).serialize()
                                            for _ in range(n))
            s.sendall(buf)
            sent = n
        elif kind == "continuation":
            hf = HeadersFrame(1)
            hf.data = enc.encode([(":method", "GET"), (":scheme", "http"),
                                  (":authority", "x"), (":path", "/v1/models")])
            s.sendall(hf.serialize())
            for i in range(n):
                cf = ContinuationFrame(1)
                cf.data = enc.encode([("x-fill-%d" % i, "y")])
                s.sendall(cf.serialize())
                sent += 1
        else:
            raise SystemExit("unknown flood " + kind)
    except OSError as e:
        out("h2_note", error=str(e))
    got, closed = read_until_closed(s, 5)
    out("h2_flood", kind=kind, sent=sent, got=got, closed=closed)
    out("h2_done", closed=closed)


def scenario_headers(port, kind):
    """A request whose decoded header list is too large (an HPACK bomb:
    one big field indexed again and again) or has too many fields."""
    c = Client(port)
    if kind == "bomb":
        # 4000 bytes into the dynamic table once, then referenced: each
        # repeat costs one byte on the wire.
        big = ("x-bomb", "b" * 4000)
        hdrs = tokens(1) + [big] * 200
    else:
        hdrs = tokens(1) + [("x-f%d" % i, "v") for i in range(300)]
    # The proxy's SETTINGS_MAX_HEADER_LIST_SIZE makes python-h2 refuse to
    # send it; the limit is ours to enforce, so it is lifted here.
    c.conn.max_outbound_frame_size = 16384
    c.conn.remote_settings._settings[
        h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE] = collections.deque([1 << 30])
    sid = c.request(hdrs)
    c.wait(lambda: c.ended.get(sid) or sid in c.reset, 10)
    c.report(sid)
    sid2 = c.request(tokens(2))
    c.wait(lambda: c.ended.get(sid2) or sid2 in c.reset, 10)
    c.report(sid2)
    out("h2_done", goaway=c.goaway)


def scenario_zero_window(port, n="2"):
    """Streams whose window never opens: the proxy resets them after
    send_timeout_ms, and the connection goes on."""
    c = Client(port, window=0)
    sids = [c.request(tokens(100000, 0, 1)) for _ in range(int(n))]
    c.wait(lambda: all(s in c.reset for s in sids), 20)
    for s in sids:
        c.report(s)
    c.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
    c.auto_window = True
    c.flush()
    sid = c.request(tokens(2))
    c.wait(lambda: c.ended.get(sid) or sid in c.reset, 10)
    c.report(sid)
    out("h2_done", goaway=c.goaway)


def scenario_admin(port):
    """Two long streams named h2-one and h2-two; waits for the test to
    cancel h2-two from outside (admin API), then shows h2-one went on."""
    c = Client(port)
    one = c.request(tokens(100000, 0, 20) + [("x-request-id", "h2-one")])
    two = c.request(tokens(100000, 0, 20) + [("x-request-id", "h2-two")])
    c.wait(lambda: c.events(one) >= 2 and c.events(two) >= 2, 10)
    out("h2_sent", streams=[one, two])
    c.wait(lambda: c.ended.get(two) or two in c.reset, 20)
    before = c.events(one)
    c.wait(lambda: False, 0.5)
    out("h2_admin", one_before=before, one_after=c.events(one))
    c.report(one)
    c.report(two)
    c.rst(one)
    c.pump(0.2)
    out("h2_done", goaway=c.goaway, closed=c.closed)


def scenario_no_read(port, n="8", secs="5"):
    """Streams with huge windows on a socket the client never reads (a
    small receive buffer): the proxy's output backs up; after secs the
    client resets the connection without having read a byte."""
    c = Client(port, window=1 << 30)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.conn.increment_flow_control_window(1 << 30)
    c.flush()
    sids = [c.request(tokens(100000, 0, 1)) for _ in range(int(n))]
    out("h2_sent", streams=sids)
    time.sleep(float(secs))
    c.close_rst()
    out("h2_done")


def scenario_cancel_api(port):
    """A long stream, then on the same connection the client's own cancel
    call for it (POST /v1/cancel/ID): 202 on the second stream, the first
    ends with the SSE error."""
    c = Client(port)
    victim = c.request(tokens(100000, 0, 20) + [("x-request-id", "h2-victim")])
    c.wait(lambda: c.events(victim) >= 2, 10)
    call = c.request(body=b"", path="/v1/cancel/h2-victim")
    c.wait(lambda: (c.ended.get(victim) or victim in c.reset) and
           (c.ended.get(call) or call in c.reset), 10)
    c.report(victim)
    c.report(call)
    out("h2_done", goaway=c.goaway, closed=c.closed)


def scenario_stall_body(port):
    """A request head whose body never comes: the stream alone gets 408
    after header_timeout_ms; another stream goes on meanwhile."""
    c = Client(port)
    sid = c.request(tokens(5), body=BODY[:5], end=False)
    other = c.request(tokens(3))
    c.wait(lambda: sid in c.status and (c.ended.get(sid) or sid in c.reset)
           and c.ended.get(other), 15)
    c.report(sid)
    c.report(other)
    out("h2_done", goaway=c.goaway, closed=c.closed)


def send_body(c, sid, data, end):
    """Sends data on sid in 16 KiB frames as the windows allow."""
    off = 0
    while off < len(data):
        n = min(16384, len(data) - off)
        if not c.wait(lambda: c.conn.local_flow_control_window(sid) >= n, 5):
            raise SystemExit("no window for stream %d" % sid)
        c.conn.send_data(sid, data[off:off + n],
                         end_stream=end and off + n == len(data))
        c.flush()
        off += n


def scenario_body_cap(port):
    """Two request bodies of 60 KB at once on one connection whose cap is
    100 KB: the second is refused (503) when it would pass the cap, the
    first, finished afterwards, is served."""
    c = Client(port)
    pad = b" " * 60000
    body = b'{"model":"mock-1","stream":true,"messages":[],"pad":"' + pad + b'"}'
    hdrs = [(":method", "POST"), (":scheme", "http"),
            (":authority", "127.0.0.1"), (":path", "/v1/chat/completions"),
            ("content-type", "application/json")] + tokens(2)
    a = c.conn.get_next_available_stream_id()
    c.conn.send_headers(a, hdrs)
    send_body(c, a, body[:-10], False)
    b = c.conn.get_next_available_stream_id()
    c.conn.send_headers(b, hdrs)
    c.flush()
    try:
        send_body(c, b, body, True)
    except h2.exceptions.StreamClosedError:
        pass
    c.wait(lambda: b in c.status and (c.ended.get(b) or b in c.reset), 10)
    send_body(c, a, body[-10:], True)
    c.wait(lambda: c.ended.get(a) or a in c.reset, 10)
    c.report(a)
    c.report(b)
    out("h2_done", goaway=c.goaway, closed=c.closed)


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    name, port, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    fn = {
        "streams": scenario_streams,
        "rst": scenario_rst,
        "leave": scenario_leave,
        "rapid_reset": scenario_rapid_reset,
        "flood": scenario_flood,
        "headers": scenario_headers,
        "zero_window": scenario_zero_window,
        "admin": scenario_admin,
        "no_read": scenario_no_read,
        "cancel_api": scenario_cancel_api,
        "stall_body": scenario_stall_body,
        "body_cap": scenario_body_cap,
    }.get(name)
    if fn is None:
        raise SystemExit("unknown scenario " + name)
    try:
        fn(port, *args)
    except Exception as e:  # reported, so the test shows it
        out("h2_error", error=repr(e))
        raise


if __name__ == "__main__":
    main()
