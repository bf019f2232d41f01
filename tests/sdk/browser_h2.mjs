// A real browser over HTTP/2: Debian's Chromium, driven by puppeteer-core,
// opens ten concurrent chat streams to cancelproxy over TLS (ALPN h2) and
// aborts one with AbortController after its second token. The other nine
// read to [DONE] on the same connection; the aborted one's model stream is
// closed and its cancel record says rst_stream.
// Usage: CP_BIN_DIR=build node tests/sdk/browser_h2.mjs  (prints "N passed, N failed")
import { execFileSync } from 'node:child_process';
import { writeFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { BIN, tmp, start, waitRecord as waitRecord5, assert, run } from './lib.mjs';

const CHROMIUM = process.env.CP_CHROMIUM || '/usr/bin/chromium';
// A browser is slower to start than an SDK: records get 10 s.
const waitRecord = (proc, pred, ms = 10000) => waitRecord5(proc, pred, ms);

// The page's side: n streams at once, stream `abortAt` aborted after its
// second token; what each one got.
async function pageStreams(n, abortAt) {
  const run = async (i) => {
    const ac = new AbortController();
    const res = await fetch('/v1/chat/completions', {
      method: 'POST', signal: ac.signal,
      headers: { 'content-type': 'application/json', 'x-request-id': `browser-${i}` },
      body: JSON.stringify({ model: 'mock-1', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let text = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += dec.decode(value, { stream: true });
        if (i === abortAt && text.includes('tok2 ')) ac.abort();
      }
      return { i, status: res.status, aborted: false, done: text.includes('data: [DONE]') };
    } catch (e) {
      return { i, status: res.status, aborted: true, error: e.name };
    }
  };
  return Promise.all(Array.from({ length: n }, (_, i) => run(i)));
}

const tests = {
  async 'ten streams on one HTTP/2 connection, one aborted'() {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
      'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(tmp, 'key.pem'),
      '-out', join(tmp, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    const m = start('mock', [join(BIN, 'cancelproxy-mock'), '--listen', '127.0.0.1:0',
      '--first-token-ms', '100', '--interval-ms', '30', '--tokens', '40']);
    const mr = await waitRecord(m, (x) => x.event === 'listening');
    const conf = {
      hop: 'edge', workers: 1,
      listen: [{ address: '127.0.0.1:0', tls: { cert: join(tmp, 'cert.pem'), key: join(tmp, 'key.pem') } }],
      upstreams: { mock: { url: `http://127.0.0.1:${mr.port}` } },
      routes: [{ path_prefix: '/', upstream: 'mock' }],
    };
    writeFileSync(join(tmp, 'edge.json'), JSON.stringify(conf));
    const p = start('edge', [join(BIN, 'cancelproxy'), '-c', join(tmp, 'edge.json')]);
    const pr = await waitRecord(p, (x) => x.event === 'listening');
    const port = Number(pr.address.split(':').pop());

    const browser = await puppeteer.launch({
      executablePath: CHROMIUM, headless: true, acceptInsecureCerts: true,
      args: ['--no-sandbox', '--disable-gpu', '--ignore-certificate-errors',
        `--user-data-dir=${join(tmp, 'profile')}`],
    });
    let got;
    try {
      const page = await browser.newPage();
      const nav = await page.goto(`https://127.0.0.1:${port}/debug/echo`);
      assert(nav.status() === 200, `page status ${nav.status()}`);
      got = await page.evaluate(pageStreams, 10, 3);
    } finally {
      await browser.close();
    }
    for (const r of got) {
      if (r.i === 3)
        assert(r.aborted && r.error === 'AbortError', `stream 3: ${JSON.stringify(r)}`);
      else
        assert(r.status === 200 && r.done && !r.aborted, `stream ${r.i}: ${JSON.stringify(r)}`);
    }
    const c = await waitRecord(p, (x) => x.event === 'cancel' && x.request_id === 'browser-3');
    assert(c.detected_via === 'rst_stream', `detected_via ${c.detected_via}`);
    assert(c.protocol === 'h2' && c.stream_id > 0, JSON.stringify(c));
    assert(c.detect_to_close_us >= 0, `detect_to_close_us ${c.detect_to_close_us}`);
    const ms = await waitRecord(m, (x) => x.event === 'mock_stream' && x.request_id === 'browser-3');
    assert(ms.outcome === 'client_fin' || ms.outcome === 'client_rst', `mock saw ${ms.outcome}`);
    assert(ms.tokens_sent < 40, `the aborted stream ran to its end (${ms.tokens_sent} tokens)`);
    // All ten on one connection, over h2, nine completed.
    const reqs = [];
    for (let i = 0; i < 10; i++)
      reqs.push(await waitRecord(p, (x) => x.event === 'request' && x.request_id === `browser-${i}`));
    const conns = new Set(reqs.map((r) => r.connection));
    assert(reqs.every((r) => r.protocol === 'h2'), 'not all over h2');
    assert(conns.size === 1, `streams spread over ${conns.size} connections`);
    assert(reqs.filter((r) => r.outcome === 'completed').length === 9, 'nine did not complete');
  },
};

if (!existsSync(CHROMIUM)) {
  console.log(`skipped: no ${CHROMIUM}`);
  rmSync(tmp, { recursive: true, force: true });
  process.exit(0);
}
await run(tests);
