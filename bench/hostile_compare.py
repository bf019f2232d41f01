# bench/hostile_compare.py: drives the request shapes of issue 19 (part A)
# at nginx, HAProxy and cancelproxy, each in front of cancelproxy-mock, and
# prints what the client got and what reached the mock (docs/hardening.md).
# Needs nginx-light and haproxy (Debian), a build in BUILD_DIR (default
# build/) and ports 18601-18604 free. Run: /usr/bin/python3 bench/hostile_compare.py
import json, os, socket, subprocess, sys, tempfile, time, threading
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.environ.get("BUILD_DIR", os.path.join(ROOT, "build"))
D = tempfile.mkdtemp(prefix="cp-hostile-")
MOCK, NG, HA, CP = 18601, 18602, 18603, 18604
procs = []
def start(argv, **kw):
    p = subprocess.Popen(argv, stdout=open(D + "/%s.out" % os.path.basename(argv[0]), "w"),
                         stderr=subprocess.STDOUT, **kw)
    procs.append(p)
    return p
start([B + "/cancelproxy-mock", "--listen", "127.0.0.1:%d" % MOCK, "-f", "5", "-i", "5", "-n", "3"])
open(D + "/nginx.conf", "w").write("""
worker_processes 1; daemon off; pid %(d)s/nginx.pid; error_log %(d)s/nginx-error.log info;
events { worker_connections 1024; }
http { access_log %(d)s/nginx-access.log;
  client_body_temp_path %(d)s/body; proxy_temp_path %(d)s/proxy;
  fastcgi_temp_path %(d)s/fcgi; uwsgi_temp_path %(d)s/uwsgi; scgi_temp_path %(d)s/scgi;
  upstream mock { server 127.0.0.1:%(m)d; keepalive 8; }
  server { listen 127.0.0.1:%(p)d;
    location / { proxy_pass http://mock; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_buffering off; } } }
""" % {"d": D, "m": MOCK, "p": NG})
open(D + "/haproxy.cfg", "w").write("""
global
    nbthread 1
defaults
    mode http
    option abortonclose
    option http-no-delay
    timeout connect 5s
    timeout client 3600s
    timeout server 3600s
    timeout http-request 10s
    timeout http-keep-alive 75s
frontend fe
    bind 127.0.0.1:%d
    default_backend be
backend be
    server mock 127.0.0.1:%d
""" % (HA, MOCK))
open(D + "/cp.json", "w").write(json.dumps({"hop": "edge", "workers": 1,
    "listen": [{"address": "127.0.0.1:%d" % CP}],
    "upstreams": {"mock": {"url": "http://127.0.0.1:%d" % MOCK}},
    "routes": [{"path_prefix": "/", "upstream": "mock"}]}))
start(["/usr/sbin/nginx", "-p", D + "/", "-e", D + "/nginx-error.log", "-c", D + "/nginx.conf"])
start(["/usr/sbin/haproxy", "-f", D + "/haproxy.cfg"])
start([B + "/cancelproxy", "-c", D + "/cp.json"])
time.sleep(1.0)

def exchange(port, raw, wait=3.0):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(wait)
    s.sendall(raw)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b: break
            out += b
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(body) >= int(cl[0].split(b":")[1]): break
    except socket.timeout:
        pass
    s.close()
    return out

def summary(out):
    if not out: return "no answer"
    head, _, body = out.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0].decode("latin1")
    try:
        j = json.loads(body)
        if "headers" in j:
            hs = [h for h in j["headers"] if h[0].lower() in
                  ("x-whatever", "x-request-id", "x-forwarded-for", "forwarded", "upgrade", "http2-settings")]
            return "%s; mock got path %s, fields %s" % (status, j["path"], hs)
    except Exception:
        pass
    return "%s; %s" % (status, body[:120].decode("latin1", "replace"))

shapes = [
 ("trailers", b"POST /debug/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
  b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Whatever: 1\r\nX-Request-Id: from-trailer\r\n\r\n"),
 ("5000 fields", b"GET /debug/echo HTTP/1.1\r\nHost: a\r\n" + b"x: 1\r\n" * 5000 + b"\r\n"),
 ("101 fields", b"GET /debug/echo HTTP/1.1\r\nHost: a\r\n" + b"x: 1\r\n" * 100 + b"\r\n"),
 ("fragment", b"GET /debug/echo#frag HTTP/1.1\r\nHost: a\r\n\r\n"),
 ("absolute form", b"GET http://other.example/debug/echo HTTP/1.1\r\nHost: other.example\r\n\r\n"),
 ("XFF from client", b"GET /debug/echo HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7\r\nForwarded: for=203.0.113.7\r\n\r\n"),
 ("Upgrade: h2c", b"GET /debug/echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"),
 ("Upgrade: websocket", b"GET /debug/echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"),
 ("h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
]
names = [("nginx", NG), ("haproxy", HA), ("cancelproxy", CP)]
for label, raw in shapes:
    for n, port in names:
        print("%-20s %-12s %s" % (label, n, summary(exchange(port, raw))))

# Trickle: a head with Content-Length 40, then a byte every 2 s for 24 s.
def trickle(n, port, res):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /debug/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n")
    t0 = time.time(); s.settimeout(2.0); got = b""
    while time.time() - t0 < 24:
        try:
            s.sendall(b" ")
        except OSError:
            break
        try:
            b = s.recv(4096)
            if not b: got = got or b"(closed)"; break
            got += b; break
        except socket.timeout:
            pass
    res[n] = "after %.1f s: %s" % (time.time() - t0, got.split(b"\r\n")[0].decode("latin1") or "still open, no answer")
    s.close()
res = {}
ts = [threading.Thread(target=trickle, args=(n, p, res)) for n, p in names]
[t.start() for t in ts]; [t.join() for t in ts]
for n, _ in names:
    print("%-20s %-12s %s" % ("body trickle 1B/2s", n, res[n]))
for p in procs:
    p.terminate()
for p in procs:
    p.wait()
