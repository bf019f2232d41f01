// A real browser through cancelproxy: Debian's chromium, driven by
// puppeteer-core (never a downloaded browser), loads pages from another
// origin (a static server here, on another port) that call the proxy with
// CORS. The model must see its stream closed when a page aborts, a
// disallowed origin must reach nothing, and the demo page's Stop must work.
// Screenshots go to CP_ARTIFACT_DIR (default: CP_BIN_DIR/artifacts).
// Usage: CP_BIN_DIR=build node tests/sdk/browser.mjs
//
// Each test runs once per transport in TRANSPORTS. Only HTTP/1.1 exists
// today; an HTTP/2 entry (a TLS listener with "protocols": ["h2"], and
// chromium told to trust the test CA) is the one thing to add once the
// listeners speak it.
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { BIN, mock, proxy, run, assert, assertCanceled, records, waitRecord, sleep } from './lib.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = process.env.CP_ARTIFACT_DIR || join(BIN, 'artifacts');
const CHROMIUM = process.env.CP_CHROMIUM || '/usr/bin/chromium';
mkdirSync(ARTIFACTS, { recursive: true });

const TRANSPORTS = [
  { name: 'http/1.1', listen: {}, scheme: 'http' },
];

// A static server on 127.0.0.1 (its own origin): a blank page for the
// tests' scripts, and the demo page from examples/.
const pages = {
  '/blank.html': '<!doctype html><meta charset="utf-8"><title>blank</title><p>test page</p>',
  '/chat.html': readFileSync(join(HERE, '..', '..', 'examples', 'chat.html'), 'utf8'),
};
async function pageServer() {
  const srv = createServer((req, res) => {
    const body = pages[new URL(req.url, 'http://x').pathname];
    res.writeHead(body ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(body || 'not found');
  });
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  srv.origin = `http://127.0.0.1:${srv.address().port}`;
  return srv;
}

const allowed = await pageServer();	// the origin the proxy lets in
const other = await pageServer();	// an origin it does not
const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  userDataDir: mkdtempSync(join(tmpdir(), 'cp-chromium-')),
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

// A new tab on origin srv, at path.
async function tab(srv, path = '/blank.html') {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.log(`  page error: ${e.message}`));
  await page.goto(srv.origin + path);
  return page;
}

// In the page: starts a streaming chat completion with an Authorization
// header (so the browser must preflight), keeping its AbortController and
// what it read in window.cp. Resolves once the response head is in.
function pageStream(page, url, extraHeaders = {}) {
  return page.evaluate(async (url, extraHeaders) => {
    const cp = window.cp = { ctrl: new AbortController(), chunks: 0, done: null, error: null };
    const res = await fetch(url + '/v1/chat/completions', {
      method: 'POST', signal: cp.ctrl.signal,
      headers: { Authorization: 'Bearer sk-page-test', 'Content-Type': 'application/json', ...extraHeaders },
      body: JSON.stringify({ model: 'mock-1', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    cp.status = res.status;
    cp.requestId = res.headers.get('X-Request-Id');
    const reader = res.body.getReader();
    cp.done = (async () => {
      try {
        for (;;) { const { done } = await reader.read(); if (done) break; cp.chunks++; }
      } catch (e) { cp.error = e.name; }
    })();
    return { status: cp.status, requestId: cp.requestId };
  }, url, extraHeaders);
}

// Waits in the page until it has read at least n body chunks.
function pageChunks(page, n) {
  return page.waitForFunction((n) => window.cp && window.cp.chunks >= n, { timeout: 5000 }, n);
}

const corsRoute = (extra = {}) => ({ cors: { allow_origins: [allowed.origin], ...extra } });

const tests = {};
for (const t of TRANSPORTS) {
  const base = (h) => `${t.scheme}://127.0.0.1:${h.port}`;

  tests[`${t.name}: a page on another origin aborts mid-stream and the model stream closes`] = async () => {
    const m = await mock(['--first-token-ms', '10', '--interval-ms', '20', '--tokens', '10000']);
    const edge = await proxy('edge', m.port, { route: corsRoute() });
    const page = await tab(allowed);
    try {
      const r = await pageStream(page, base(edge));
      assert(r.status === 200, `status ${r.status}`);
      assert(/^[0-9a-f]{32}$/.test(r.requestId || ''), `X-Request-Id not readable: ${r.requestId}`);
      await pageChunks(page, 3);
      await page.evaluate(() => { window.cp.ctrl.abort(); return window.cp.done; });
      const { cancel } = await assertCanceled(edge, m, { requestId: r.requestId, phase: 'streaming' });
      assert(cancel.cancel_path.join(',') === 'client,edge', `path ${cancel.cancel_path}`);
      const pre = records(edge, (x) => x.event === 'request' && x.method === 'OPTIONS');
      assert(pre.length === 1 && pre[0].status === 204 && pre[0].cors === 'preflight',
        `preflight records ${JSON.stringify(pre)}`);
      const reqs = records(m, (x) => x.event === 'mock_request');
      assert(reqs.length === 1 && reqs[0].method === 'POST', `the model saw ${JSON.stringify(reqs)}`);
    } finally { await page.close(); }
  };

  tests[`${t.name}: a page aborts before the first token and the model stream closes`] = async () => {
    const m = await mock(['--first-token-ms', '60000']);
    const edge = await proxy('edge', m.port, { route: corsRoute() });
    const page = await tab(allowed);
    try {
      // Not awaited: the head may only come with the first token.
      const started = pageStream(page, base(edge)).catch((e) => e);
      await waitRecord(m, (x) => x.event === 'mock_request');
      await page.evaluate(() => window.cp.ctrl.abort());
      await started;
      const { stream } = await assertCanceled(edge, m, { phase: 'waiting_first_byte' });
      assert(stream.phase === 'waiting_first_token', `mock phase ${stream.phase}`);
    } finally { await page.close(); }
  };

  tests[`${t.name}: a page cancels by the X-Request-Id it read (cancel API, preflighted)`] = async () => {
    const m = await mock(['--first-token-ms', '10', '--interval-ms', '20', '--tokens', '10000']);
    const edge = await proxy('edge', m.port, { route: corsRoute() });
    const page = await tab(allowed);
    try {
      const r = await pageStream(page, base(edge));
      await pageChunks(page, 2);
      const answer = await page.evaluate(async (url, id) => {
        const res = await fetch(`${url}/v1/cancel/${id}`, { method: 'POST', headers: { Authorization: 'Bearer sk-page-test' } });
        return { status: res.status, body: await res.json(), id: res.headers.get('X-Request-Id') };
      }, base(edge), r.requestId);
      assert(answer.status === 202, `cancel API answered ${answer.status} ${JSON.stringify(answer.body)}`);
      assert(answer.id, 'the cancel answer had no readable X-Request-Id');
      await assertCanceled(edge, m, { kind: 'client_cancel', requestId: r.requestId, phase: 'streaming' });
      const pre = records(edge, (x) => x.event === 'request' && x.method === 'OPTIONS' &&
        x.path.startsWith('/v1/cancel/'));
      assert(pre.length === 1 && pre[0].status === 204, `cancel preflight ${JSON.stringify(pre)}`);
    } finally { await page.close(); }
  };

  tests[`${t.name}: a disallowed origin is refused and nothing reaches the model`] = async () => {
    const m = await mock(['--first-token-ms', '10', '--interval-ms', '20', '--tokens', '10000']);
    const edge = await proxy('edge', m.port, { route: corsRoute() });
    const page = await tab(other);
    try {
      const err = await pageStream(page, base(edge)).then(() => null, (e) => String(e));
      assert(err && /Failed to fetch/.test(err), `the page was let in: ${err}`);
      // A simple request (text/plain, no preflight) is refused too.
      const simple = await page.evaluate(async (url) => {
        try {
          await fetch(url + '/v1/chat/completions', { method: 'POST', body: '{"model":"mock-1","stream":true}' });
          return 'read';
        } catch (e) { return e.name; }
      }, base(edge));
      assert(simple === 'TypeError', `simple request: ${simple}`);
      const refused = await waitRecord(edge, (x) => x.event === 'request' && x.method === 'POST');
      assert(refused.status === 403 && refused.cors === 'origin_not_allowed', `record ${JSON.stringify(refused)}`);
      const pre = await waitRecord(edge, (x) => x.event === 'request' && x.method === 'OPTIONS');
      assert(pre.status === 403 && pre.cors === 'origin_not_allowed', `preflight ${JSON.stringify(pre)}`);
      await sleep(300);
      const seen = records(m, (x) => x.event === 'mock_request');
      assert(seen.length === 0, `the model saw ${seen.length} request(s)`);
    } finally { await page.close(); }
  };

  tests[`${t.name}: the page reads why the proxy failed (504 with Proxy-Status)`] = async () => {
    const m = await mock(['--first-token-ms', '60000']);
    const edge = await proxy('edge', m.port, { route: corsRoute(), timeouts: { first_byte: 300 } });
    const page = await tab(allowed);
    try {
      const got = await page.evaluate(async (url) => {
        const res = await fetch(url + '/v1/chat/completions', {
          method: 'POST', headers: { Authorization: 'Bearer sk-page-test', 'Content-Type': 'application/json' },
          body: JSON.stringify({ model: 'mock-1', stream: false, messages: [] }),
        });
        return { status: res.status, ps: res.headers.get('Proxy-Status'), body: await res.json() };
      }, base(edge));
      assert(got.status === 504, `status ${got.status}`);
      assert(/^edge; error=http_response_timeout/.test(got.ps || ''), `Proxy-Status ${got.ps}`);
      assert(got.body.error.code === 'first_byte_timeout', `body ${JSON.stringify(got.body)}`);
    } finally { await page.close(); }
  };

  tests[`${t.name}: the demo page streams, Stop closes the model stream, the record shows`] = async () => {
    const m = await mock(['--first-token-ms', '50', '--interval-ms', '60', '--tokens', '10000']);
    const edge = await proxy('edge', m.port, { route: corsRoute(), extra: { admin: { address: '127.0.0.1:0' } } });
    const page = await tab(allowed, `/chat.html?proxy=${base(edge)}&admin=http://127.0.0.1:${edge.adminPort}`);
    try {
      await page.setViewport({ width: 900, height: 900 });
      await page.click('#send');
      await page.waitForFunction(() => document.getElementById('answer').textContent.split('tok').length > 5,
        { timeout: 5000 });
      await page.screenshot({ path: join(ARTIFACTS, 'chat-streaming.png') });
      await page.click('#stop');
      await page.waitForFunction(() => /client_disconnect/.test(document.getElementById('record').textContent),
        { timeout: 5000 });
      await page.screenshot({ path: join(ARTIFACTS, 'chat-stopped.png'), fullPage: true });
      const shown = JSON.parse(await page.$eval('#record', (e) => e.textContent));
      const { cancel } = await assertCanceled(edge, m, { phase: 'streaming' });
      assert(shown.request_id === cancel.request_id, `page shows ${shown.request_id}, proxy wrote ${cancel.request_id}`);
      assert(/^page-/.test(cancel.request_id), `request id ${cancel.request_id} is not the page's`);
    } finally { await page.close(); }
  };

  tests[`${t.name}: the demo page's Cancel by id stops the stream through the cancel API`] = async () => {
    const m = await mock(['--first-token-ms', '50', '--interval-ms', '60', '--tokens', '10000']);
    const edge = await proxy('edge', m.port, { route: corsRoute(), extra: { admin: { address: '127.0.0.1:0' } } });
    const page = await tab(allowed, `/chat.html?proxy=${base(edge)}&admin=http://127.0.0.1:${edge.adminPort}`);
    try {
      await page.click('#send');
      await page.waitForFunction(() => document.getElementById('answer').textContent.split('tok').length > 3,
        { timeout: 5000 });
      await page.click('#cancel-id');
      await page.waitForFunction(() => /client_cancel/.test(document.getElementById('record').textContent),
        { timeout: 5000 });
      await page.screenshot({ path: join(ARTIFACTS, 'chat-cancel-by-id.png'), fullPage: true });
      const shown = JSON.parse(await page.$eval('#record', (e) => e.textContent));
      await assertCanceled(edge, m, { kind: 'client_cancel', requestId: shown.request_id, phase: 'streaming' });
    } finally { await page.close(); }
  };
}

await run(tests, async () => {
  await browser.close();
  allowed.close();
  other.close();
});
