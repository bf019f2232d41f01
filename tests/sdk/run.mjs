// Real clients through cancelproxy: the official OpenAI SDK (Node) streams,
// aborts mid-stream, and gets errors that name the hop where they started.
// Usage: CP_BIN_DIR=build node tests/sdk/run.mjs  (prints "N passed, N failed")
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';

const BIN = process.env.CP_BIN_DIR || 'build';
const tmp = mkdtempSync(join(tmpdir(), 'cp-sdk-'));
const procs = [];

// A child process whose JSON log lines are collected as records.
function start(name, argv) {
  const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = { name, p, records: [], waiters: [], out: '' };
  let buf = '';
  p.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      proc.out += line + '\n';
      try { proc.records.push(JSON.parse(line)); } catch { continue; }
      proc.waiters = proc.waiters.filter((w) => !w());
    }
  });
  p.stderr.on('data', (d) => { proc.out += d; });
  procs.push(proc);
  return proc;
}

// Resolves with the first record matching pred, or rejects after ms.
function waitRecord(proc, pred, ms = 5000) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const r = proc.records.find(pred);
      if (r) { resolve(r); return true; }
      return false;
    };
    if (check()) return;
    proc.waiters.push(check);
    setTimeout(() => reject(new Error(`${proc.name}: no matching record in ${ms} ms\n${proc.out}`)), ms);
  });
}

async function mock(args = []) {
  const m = start('mock', [join(BIN, 'cancelproxy-mock'), '--listen', '127.0.0.1:0', ...args]);
  const r = await waitRecord(m, (x) => x.event === 'listening');
  m.port = r.port ?? Number(r.address.split(':').pop());
  return m;
}

async function hop(name, upPort, { peer = false, timeouts = {} } = {}) {
  const conf = {
    hop: name, workers: 1, listen: [{ address: '127.0.0.1:0' }],
    upstreams: { next: { url: `http://127.0.0.1:${upPort}`, peer, timeouts_ms: timeouts } },
    routes: [{ path_prefix: '/v1/', upstream: 'next' }],
  };
  const file = join(tmp, `${name}.json`);
  writeFileSync(file, JSON.stringify(conf));
  const h = start(name, [join(BIN, 'cancelproxy'), '-c', file]);
  const r = await waitRecord(h, (x) => x.event === 'listening');
  h.port = Number(r.address.split(':').pop());
  return h;
}

function client(port) {
  return new OpenAI({ apiKey: 'sk-test-not-real', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0, timeout: 20000 });
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const tests = {
  async 'non-streaming completion'() {
    const m = await mock(['--first-token-ms', '0', '--interval-ms', '0', '--tokens', '5']);
    const edge = await hop('edge', m.port);
    const r = await client(edge.port).chat.completions.create({ model: 'mock-1', messages: [{ role: 'user', content: 'hi' }] });
    assert(r.choices[0].message.content.length > 0, 'empty content');
    assert(r.usage && r.usage.completion_tokens === 5, `usage ${JSON.stringify(r.usage)}`);
  },

  async 'streaming to the end'() {
    const m = await mock(['--first-token-ms', '10', '--interval-ms', '5', '--tokens', '12']);
    const edge = await hop('edge', m.port);
    const stream = await client(edge.port).chat.completions.create({ model: 'mock-1', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    let n = 0;
    for await (const chunk of stream) if (chunk.choices[0]?.delta?.content) n++;
    assert(n === 12, `got ${n} tokens`);
    await waitRecord(edge, (x) => x.event === 'request' && x.outcome === 'completed');
  },

  async 'abort mid-stream cancels the model'() {
    const m = await mock(['--first-token-ms', '10', '--interval-ms', '20', '--tokens', '10000']);
    const edge = await hop('edge', m.port);
    const stream = await client(edge.port).chat.completions.create({ model: 'mock-1', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    let n = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content) n++;
      if (n === 3) { stream.controller.abort(); break; }
    }
    const c = await waitRecord(edge, (x) => x.event === 'cancel');
    assert(c.origin.kind === 'client_disconnect', `origin ${c.origin.kind}`);
    assert(c.phase === 'streaming', `phase ${c.phase}`);
    assert(c.detect_to_close_us >= 0, 'no detect_to_close_us');
    const s = await waitRecord(m, (x) => x.event === 'mock_stream');
    assert(s.outcome === 'client_fin' || s.outcome === 'client_rst', `mock saw ${s.outcome}`);
    assert(s.tokens_sent < 1000, `the model kept generating: ${s.tokens_sent}`);
  },

  async 'abort while waiting for the first token'() {
    const m = await mock(['--first-token-ms', '60000']);
    const edge = await hop('edge', m.port);
    const ac = new AbortController();
    const p = client(edge.port).chat.completions.create({ model: 'mock-1', stream: true, messages: [{ role: 'user', content: 'hi' }] }, { signal: ac.signal })
      .then(async (stream) => { for await (const _ of stream) { /* nothing comes */ } });
    await waitRecord(m, (x) => x.event === 'mock_request');
    ac.abort();
    await p.catch(() => {});
    const c = await waitRecord(edge, (x) => x.event === 'cancel');
    assert(c.phase === 'waiting_first_byte', `phase ${c.phase}`);
    const s = await waitRecord(m, (x) => x.event === 'mock_stream');
    assert(s.phase === 'waiting_first_token', `mock phase ${s.phase}`);
  },

  async 'a timeout at core reaches the SDK as an error naming core'() {
    const m = await mock(['--first-token-ms', '10', '--interval-ms', '20', '--tokens', '10000']);
    const core = await hop('core', m.port, { timeouts: { idle: 300 } });
    const edge = await hop('edge', core.port, { peer: true });
    const stream = await client(edge.port).chat.completions.create({ model: 'mock-1', stream: true, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { 'X-Mock-Fault': 'stall_after:2' } });
    let err = null, n = 0;
    try {
      for await (const chunk of stream) if (chunk.choices[0]?.delta?.content) n++;
    } catch (e) { err = e; }
    assert(err, 'the SDK saw no error: a cut stream looked finished');
    assert(/core -> edge/.test(err.message), `error does not name the path: ${err.message}`);
    assert(n === 2, `tokens before the error: ${n}`);
  },

  async 'a 504 before headers reaches the SDK with the path'() {
    const m = await mock(['--first-token-ms', '60000']);
    const core = await hop('core', m.port, { timeouts: { first_byte: 300 } });
    const edge = await hop('edge', core.port, { peer: true });
    let err = null;
    try {
      await client(edge.port).chat.completions.create({ model: 'mock-1', messages: [{ role: 'user', content: 'hi' }] });
    } catch (e) { err = e; }
    assert(err && err.status === 504, `status ${err && err.status}`);
    assert(/core -> edge/.test(err.message), `message: ${err && err.message}`);
  },
};

let passed = 0, failed = 0;
for (const [name, fn] of Object.entries(tests)) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${String(e.stack || e).split('\n').join('\n  ')}`);
  }
  for (const p of procs.splice(0)) p.p.kill('SIGKILL');
}
rmSync(tmp, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
