#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/: small, real
examples of what each target reads. Run it again after changing it; the
fuzzer's own finds go to build-fuzz/corpus/, never here."""
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("latin1")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def chat(model="gpt-4o", stream=True, extra=None):
    b = {"model": model, "stream": stream,
         "messages": [{"role": "user", "content": "Say hello."}]}
    if extra:
        b.update(extra)
    return json.dumps(b, separators=(",", ":"))


def post(path, body, headers=""):
    return ("POST %s HTTP/1.1\r\nHost: a\r\nContent-Type: application/json"
            "\r\n%sContent-Length: %d\r\n\r\n%s" % (path, headers, len(body),
                                                    body))


# ---- request: byte 0 = delivery mode, then what the client sends ----------
R = "request"
put(R, "get_models", "\x00GET /v1/models HTTP/1.1\r\nHost: a\r\n\r\n")
put(R, "chat_stream", "\x00" + post("/v1/chat/completions", chat()))
put(R, "chat_stream_bytewise", "\x01" + post("/v1/chat/completions", chat()))
put(R, "chat_no_model_route", "\x02" + post("/x/chat", chat("llama3", False)))
put(R, "chat_inject", "\x00" + post("/i/chat/completions", chat(
    extra={"stream_options": {"include_usage": False}})))
put(R, "chat_drain_leaves", "\x28" + post("/d/chat/completions", chat()))
put(R, "chat_chunked", "\x03POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n"
    "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    "10\r\n{\"model\":\"gpt-4\r\n9\r\no\",\"x\":1}\r\n0\r\n\r\n")
put(R, "expect_continue", "\x00" + post("/v1/chat/completions", chat(),
                                        "Expect: 100-continue\r\n"))
put(R, "pipelined", "\x00GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
put(R, "http10_keepalive", "\x00GET /v1/models HTTP/1.0\r\n"
    "Connection: keep-alive\r\n\r\nGET /v1/models HTTP/1.0\r\n\r\n")
put(R, "identity_headers", "\x00" + post(
    "/v1/chat/completions?x=1", chat(),
    "X-Request-Id: chat-42\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c"
    "-b7ad6b7169203331-01\r\nVia: 1.1 front\r\nAuthorization: Bearer sk-a\r\n"
    "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nTE: trailers\r\n"
    "Proxy-Authorization: x\r\nKeep-Alive: timeout=5\r\n"))
put(R, "cancel_api", "\x00POST /v1/cancel/chat-42 HTTP/1.1\r\nHost: a\r\n"
    "Authorization: Bearer sk-a\r\nContent-Length: 0\r\n\r\n")
put(R, "cancel_api_then_stream", "\x00" + post(
    "/v1/chat/completions", chat(), "X-Request-Id: chat-7\r\n") +
    "POST /v1/cancel/chat-7 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
note = json.dumps({"request_id": "chat-42", "trace_id": "0" * 31 + "1",
                   "origin": {"kind": "client_disconnect", "hop": "client"},
                   "cancel_path": ["client", "edge"], "phase": "streaming",
                   "from": "edge"}, separators=(",", ":"))
put(R, "note", "\x00" + post("/.cancelproxy/note", note,
                             "X-Cancelproxy-Signature: t=1795315878, sha256="
                             + "ab" * 32 + "\r\n"))
put(R, "peer_request", "\x00" + post(
    "/p/chat/completions", chat(),
    "X-Cancelproxy-Peer: edge\r\nVia: 1.1 client-side, 1.1 edge\r\n"
    "X-Request-Id: peer-1\r\n"))
put(R, "peer_leaves", "\x20" + post(
    "/v1/chat/completions", chat(), "X-Cancelproxy-Peer: edge\r\n"))
put(R, "loop", "\x00" + post("/v1/chat/completions", chat(),
                             "Via: 1.1 fuzz, 1.1 other\r\n"
                             "X-Cancelproxy-Peer: fuzz\r\n"))
put(R, "cl_te", "\x00POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /s HTTP/1.1\r\n\r\n")
put(R, "obs_fold", "\x00GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n")
put(R, "absolute_form", "\x00GET http://o/ HTTP/1.1\r\nHost: o\r\n\r\n")
put(R, "upgrade", "\x00GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
    "Upgrade: websocket\r\n\r\n")
put(R, "slow_reader", "\x10" + post("/v1/chat/completions", chat()))
# Issue 19 (part A), 14, 18: trailers, many fields, targets, h2c, preface.
put(R, "chunked_trailers", "\x00POST /v1/chat/completions HTTP/1.1\r\n"
    "Host: a\r\nContent-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n"
    "X-Whatever: 1\r\nX-Request-Id: from-trailer\r\n"
    "Authorization: Bearer sk-a\r\nContent-Length: 9\r\n\r\n"
    % (len(chat()), chat()))
put(R, "chunked_trailers_bytewise", "\x01POST /v1/chat/completions "
    "HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    "2\r\n{}\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"
    "GET /v1/models HTTP/1.1\r\nHost: a\r\n\r\n")
put(R, "many_fields", "\x00GET /v1/models HTTP/1.1\r\nHost: a\r\n" +
    "x: 1\r\n" * 120 + "\r\n")
put(R, "fragment", "\x00GET /v1/models?a=1#frag HTTP/1.1\r\nHost: a\r\n\r\n")
put(R, "absolute_form_path", "\x00" + post(
    "http://other.example:8080/v1/chat/completions?x=1", chat()))
put(R, "absolute_form_userinfo", "\x00GET http://u:p@o/v1/models HTTP/1.1"
    "\r\nHost: o\r\n\r\n")
put(R, "forwarded_fields", "\x00" + post(
    "/v1/chat/completions", chat(),
    "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.1\r\n"
    "Forwarded: for=203.0.113.7;proto=https\r\n"))
put(R, "upgrade_h2c", "\x00GET /v1/models HTTP/1.1\r\nHost: a\r\n"
    "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
    "GET /v1/models HTTP/1.1\r\nHost: a\r\n\r\n")
put(R, "h2_preface", "\x00PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    "\x00\x00\x12\x04\x00\x00\x00\x00\x00")

# ---- response: byte 0 = setting, then the upstream's answer ---------------
S = "response"


def sse(events, chunked=True, head_extra=""):
    body = "".join(events)
    head = ("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            "Cache-Control: no-cache\r\n" + head_extra)
    if not chunked:
        return head + "Connection: close\r\n\r\n" + body
    out = head + "Transfer-Encoding: chunked\r\n\r\n"
    for e in events:
        out += "%x\r\n%s\r\n" % (len(e), e)
    return out + "0\r\n\r\n"


def chunk(delta, fin=None):
    return "data: " + json.dumps({
        "id": "chatcmpl-1", "object": "chat.completion.chunk",
        "model": "gpt-4o", "choices": [{"index": 0, "delta": delta,
                                        "finish_reason": fin}]},
        separators=(",", ":")) + "\n\n"


usage_ev = ("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
            "\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
            "\"completion_tokens\":2,\"total_tokens\":5,"
            "\"prompt_tokens_details\":{\"cached_tokens\":1},"
            "\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n")
openai = [chunk({"role": "assistant", "content": "tok1 "}),
          chunk({"content": "tok2 "}), chunk({}, "stop"), usage_ev,
          "data: [DONE]\n\n"]
put(S, "openai_stream", "\x04" + sse(openai))
put(S, "openai_stream_bytewise", "\x0c" + sse(openai))
put(S, "openai_stream_inject", "\x06" + sse(openai))
put(S, "openai_stream_close_delimited", "\x1c" + sse(openai, chunked=False))
put(S, "openai_stream_client_leaves", "\x24" + sse(openai))
put(S, "openai_stream_drain", "\x27" + sse(openai))
put(S, "openai_stream_slow_client", "\x44" + sse(openai * 40))
put(S, "openai_stream_cut_rst", "\x84" + sse(openai)[:300])
answer = json.dumps({"id": "chatcmpl-1", "object": "chat.completion",
                     "choices": [{"index": 0, "message": {
                         "role": "assistant", "content": "hi"},
                         "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 1,
                               "total_tokens": 4}}, separators=(",", ":"))
put(S, "json_answer", "\x00HTTP/1.1 200 OK\r\nContent-Type: application/json"
    "\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))
put(S, "json_answer_many_fields", "\x00HTTP/1.1 200 OK\r\n" +
    "y: 1\r\n" * 150 + "Content-Length: 2\r\n\r\n{}")
put(S, "json_answer_short", "\x00HTTP/1.1 200 OK\r\nContent-Type: "
    "application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(answer) + 64,
                                                          answer))
put(S, "interim_then_answer", "\x00HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content"
    "\r\n\r\n")
put(S, "rate_limited_fallback", "\x00HTTP/1.1 429 Too Many Requests\r\n"
    "Retry-After: 1\r\nContent-Type: application/json\r\nContent-Length: 2"
    "\r\n\r\n{}")
put(S, "server_error_fallback", "\x00HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Length: 0\r\n\r\n")
put(S, "http10_close", "\x04HTTP/1.0 200 OK\r\nContent-Type: "
    "text/event-stream\r\n\r\n" + "".join(openai))
anthropic = [
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
    "{\"usage\":{\"input_tokens\":10,\"output_tokens\":1,"
    "\"cache_read_input_tokens\":2}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
    "\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":"
    "{\"output_tokens\":7}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"]
put(S, "anthropic_stream", "\x04" + sse(anthropic))
responses = [
    "event: response.output_text.delta\ndata: {\"type\":"
    "\"response.output_text.delta\",\"delta\":\"hi\"}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\","
    "\"response\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":2,"
    "\"total_tokens\":7,\"input_tokens_details\":{\"cached_tokens\":0},"
    "\"output_tokens_details\":{\"reasoning_tokens\":1}}}}\n\n"]
put(S, "responses_stream", "\x04" + sse(responses))
peer_err = ("event: error\ndata: {\"error\":{\"message\":\"[canceled path: "
            "upstream:openai -> core] the upstream closed\",\"type\":"
            "\"proxy_error\",\"code\":\"upstream_closed\",\"cancel\":{"
            "\"request_id\":\"fuzz-1\",\"trace_id\":\"" + "1" * 32 + "\","
            "\"origin\":{\"kind\":\"upstream_closed\",\"hop\":"
            "\"upstream:openai\"},\"cancel_path\":[\"upstream:openai\","
            "\"core\"],\"phase\":\"streaming\"}}}\n\n")
put(S, "peer_sse_error", "\x05" + sse(openai[:2] + [peer_err]))
put(S, "peer_sse_error_bytewise", "\x0d" + sse(openai[:1] + [peer_err]))
perr_body = peer_err.split("data: ", 1)[1].strip()
put(S, "peer_502", "\x01HTTP/1.1 502 Bad Gateway\r\nContent-Type: "
    "application/json\r\nProxy-Status: core; error=http_response_incomplete"
    "\r\nContent-Length: %d\r\n\r\n%s" % (len(perr_body), perr_body))
put(S, "peer_stream_ok", "\x05" + sse(openai))
put(S, "sse_crlf_and_comments", "\x04" + sse([
    ": keep-alive\r\n\r\n", "id: 1\r\nevent: delta\r\ndata: {\"a\":\r\n"
    "data: 1}\r\n\r\n", "retry: 100\n\n"]))
put(S, "garbage", "\x04NOT HTTP\r\n\r\n")
put(S, "broken_chunk", "\x04" + sse(openai)[:200] + "zz\r\n")
put(S, "head_only", "\x04HTTP/1.1 200 OK\r\nX-A: 1\r\n")

# ---- sse: byte 0 seeds the read sizes, then an SSE body -------------------
put("sse", "openai", "\x07" + "".join(openai))
put("sse", "anthropic", "\x03" + "".join(anthropic))
put("sse", "responses", "\x05" + "".join(responses))
put("sse", "peer_error", "\x01" + peer_err)
put("sse", "crlf_multiline", "\x02id: 1\r\ndata: {\"usage\":\r\ndata: "
    "{\"prompt_tokens\":1}}\r\n\r\n:c\r\n\r\n")
put("sse", "json_answer", "\x01" + answer)

# ---- conf: config files ---------------------------------------------------
for f in sorted(os.listdir(os.path.join(ROOT, "examples"))):
    if f.endswith(".json"):
        with open(os.path.join(ROOT, "examples", f), "rb") as src:
            put("conf", f, src.read())
put("conf", "full.jsonc", """{
  // every section once
  "hop": "edge", "workers": 2,
  "listen": [ { "address": "127.0.0.1:0" }, { "address": "[::1]:0" } ],
  "admin": { "address": "127.0.0.1:0", "token": "${FUZZ_KEY}" },
  "upstreams": {
    "openai": { "url": "https://api.openai.com/v1x",
      "tls": { "verify": true, "ca_file": null, "server_name": "x" },
      "set_headers": { "Authorization": "Bearer ${FUZZ_KEY}" },
      "peer": false, "keepalive": 4,
      "timeouts_ms": { "connect": 5000, "first_byte": 120000, "idle": 60000,
                       "total": 0 } },
    "backup": { "url": "http://[::1]:8081" }
  },
  "routes": [ { "path_prefix": "/v1/", "models": ["gpt-*", "o[0-9]*"],
                "upstream": "openai", "fallback": ["backup"],
                "on_client_disconnect": "drain",
                "drain": { "max_ms": 100, "max_bytes": 1000 },
                "stream_usage": "inject" },
              { "upstream": "backup" } ],
  "clients": { "keys": [ { "name": "team-a", "key_sha256":
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "routes": ["*"], "max_streams": 20 } ] },
  "peers": { "secret": "s3cret", "note_wait_ms": 250 },
  "cancel_api": { "path_prefix": "/v1/cancel/" },
  "cluster": { "redis": { "address": "127.0.0.1:6379", "password": null,
                          "channel": "c" } },
  "limits": { "max_connections": 10, "max_header_bytes": 100,
              "max_body_bytes": 0, "header_timeout_ms": 1 },
  "shutdown": { "drain_ms": 0 },
  /* comment */ "log": { "path": "-", "level": "debug" }
}
""")
put("conf", "bad_path", '{"listen":[{"address":"127.0.0.1:0"}],"upstreams":'
    '{"a":{"url":"http://x","timeouts_ms":{"idle":-1}}},"routes":[]}')

# ---- note: note bodies, peer errors, "signature\nbody" ----------------------
put("note", "note", note)
put("note", "error", perr_body)
put("note", "signed", "t=1795315878, sha256=" + "0f" * 32 + "\n" + note)
put("note", "long_path", json.dumps({
    "request_id": "r", "origin": {"kind": "admin", "hop": "h0"},
    "cancel_path": ["h%d" % i for i in range(15)], "phase": "request",
    "from": "h14"}))

# ---- logscan: real log lines ----------------------------------------------
lines = [
    '{"ts":"2026-11-22T02:51:18.726726Z","level":"info","hop":"edge","event":'
    '"cancel","request_id":"60229672","trace_id":"ffec7b8206e64fc9adb3fe8637c8'
    'e1c6","origin":{"kind":"upstream_closed","hop":"upstream:mock"},'
    '"cancel_path":["upstream:mock","edge"],"direction":"downstream","phase":'
    '"streaming","detected_via":"eof","upstream":"mock","elapsed_ms":200,'
    '"detect_to_close_us":42,"sse_events":1,"bytes_out":204,"usage":null,'
    '"usage_source":"missing","message":"[canceled path: upstream:mock -> '
    'edge] the upstream closed the stream early mid-stream after 200 ms"}',
    '{"ts":"2026-11-22T02:51:18.515218Z","level":"info","hop":"edge","event":'
    '"request","request_id":"e365e937","trace_id":"0f845ae79b511ec885b9a4f240'
    'b29494","client":"127.0.0.1:34696","method":"POST","path":"/v1/chat/comp'
    'letions","model":null,"route":"/","upstream":"mock","status":200,'
    '"outcome":"completed","duration_ms":105.210,"ttfb_ms":0.192,"bytes_in":'
    '279,"bytes_out":950,"sse_events":6,"usage":{"prompt_tokens":1,'
    '"completion_tokens":3,"total_tokens":4},"usage_source":"reported"}',
    '{"ts":"2026-11-22T02:51:19Z","level":"info","hop":"core","event":"note",'
    '"request_id":"a\\u00e9\\n\\"b","from":"edge","outcome":"applied",'
    '"origin":{"kind":"client_disconnect","hop":"client"}}',
    '{"ts":"2026-11-22T02:51:20.1+01:00","level":"warn","hop":"edge","event":'
    '"note_failed","message":"cancel note not delivered: \\ud83d\\ude00"}',
    'not json at all',
]
put("logscan", "records", "\n".join(lines) + "\n")

# ---- body: byte 0 = content type (low 3 bits), then a request body --------
B = "body"
put(B, "chat", "\x00" + chat())
put(B, "chat_text_plain", "\x02" + chat())
put(B, "chat_no_type", "\x01" + chat("llama3", False))
put(B, "duplicate_model", '\x00{"model":"other","model":"gpt-4o"}')
put(B, "escaped_name", '\x00{"mod\\u0065l":"gpt-4o","model":"x"}')
put(B, "nul_in_model", '\x00{"model":"other\\u0000gpt-4o"}')
put(B, "nul_in_name", '\x00{"model\\u0000x":"gpt-4o"}')
put(B, "invalid_utf8_model", b'\x00{"model":"gpt-4o\xff\xfe"}')
put(B, "deep", "\x00{\"model\":\"gpt-4o\",\"x\":" + "[" * 600 + "]" * 600
    + "}")
put(B, "trailing", '\x00{"model":"a"}{"model":"gpt-4o"}')
put(B, "stream_options", '\x00{"model":"gpt-4o","stream":true,'
    '"stream_options":{"include_usage":false,"include_usage":true}}')
put(B, "leading_control", '\x02\x01{"model":"gpt-4o"}')
put(B, "bom", b'\x00\xef\xbb\xbf{"model":"gpt-4o"}')
put(B, "form", "\x04model=gpt-4o&stream=true")

# ---- record: target, model bytes, User-Agent, X-Request-Id (NUL between) --
put("record", "plain", "\x00chat/completions\x00gpt-4o\x00curl/8\x00r-1")
put("record", "bad_target", b"\x01chat/\xff\xfe\x00gpt-4o\x00ua\x00r-2")
put("record", "bad_model", b"\x00chat\x00gpt-4o\xc0\xaf\x00ua\xed\xa0\x80"
    b"\x00r-3")
put("record", "escapes", b"\x02x?a=%ff\x00m\\u00e9\\\\\x00\xf0\x9f\x98\x80"
    b"\x00")

# ---- h2upstream: byte 0 the mode, then HTTP/2 frames from the server ----


def frame(ftype, flags, sid, payload=b""):
    n = len(payload)
    return bytes([n >> 16, (n >> 8) & 255, n & 255, ftype, flags,
                  (sid >> 24) & 127, (sid >> 16) & 255, (sid >> 8) & 255,
                  sid & 255]) + payload


def hpack(fields):
    """Literal fields without indexing and without Huffman coding."""
    out = b""
    for name, value in fields:
        name, value = name.encode(), value.encode()
        out += bytes([0, len(name)]) + name + bytes([len(value)]) + value
    return out


def u32(v):
    return bytes([(v >> 24) & 255, (v >> 16) & 255, (v >> 8) & 255, v & 255])


SETTINGS_ACK = frame(4, 1, 0)
SSE_HEAD = [(":status", "200"), ("content-type", "text/event-stream")]
EVENT = 'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
USAGE = ('data: {"choices":[],"usage":{"prompt_tokens":3,'
         '"completion_tokens":1}}\n\ndata: [DONE]\n\n')


def h2_answer(sid, fin=True):
    return (frame(1, 4, sid, hpack(SSE_HEAD)) +
            frame(0, 0, sid, EVENT.encode()) +
            frame(0, 1 if fin else 0, sid, USAGE.encode()))


put("h2upstream", "one_stream", bytes([4]) + SETTINGS_ACK + h2_answer(1))
put("h2upstream", "four_streams", bytes([7]) + SETTINGS_ACK +
    h2_answer(1) + h2_answer(3) + h2_answer(5) + h2_answer(7))
put("h2upstream", "split_frames", bytes([4 | 16]) + SETTINGS_ACK +
    h2_answer(1))
put("h2upstream", "json_answer", bytes([0]) + SETTINGS_ACK +
    frame(1, 4, 1, hpack([(":status", "200"),
                          ("content-type", "application/json"),
                          ("content-length", "2")])) +
    frame(0, 1, 1, b"{}"))
put("h2upstream", "refused", bytes([4]) + SETTINGS_ACK +
    frame(3, 0, 1, u32(7)))
put("h2upstream", "rst_mid_stream", bytes([5]) + SETTINGS_ACK +
    h2_answer(1, fin=False) + frame(3, 0, 1, u32(2)) + h2_answer(3))
put("h2upstream", "goaway", bytes([6]) + SETTINGS_ACK +
    frame(7, 0, 0, u32(1) + u32(0)) + h2_answer(1))
put("h2upstream", "ping_window", bytes([4]) + SETTINGS_ACK +
    frame(6, 0, 0, b"12345678") + frame(8, 0, 0, u32(65536)) +
    frame(8, 0, 1, u32(1000)) + h2_answer(1))
put("h2upstream", "interim_trailers", bytes([4]) + SETTINGS_ACK +
    frame(1, 4, 1, hpack([(":status", "103"), ("link", "</a>")])) +
    h2_answer(1, fin=False) + frame(1, 5, 1, hpack([("x-t", "1")])))
put("h2upstream", "client_leaves", bytes([4 | 32 | 64]) + SETTINGS_ACK +
    h2_answer(1, fin=False) + h2_answer(1, fin=False)[9 + 40:] +
    frame(0, 1, 1, b"data: x\n\n"))
put("h2upstream", "max_streams_1", bytes([5]) +
    frame(4, 0, 0, bytes([0, 3]) + u32(1)) + SETTINGS_ACK + h2_answer(1) +
    h2_answer(3))
