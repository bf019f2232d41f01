// What the real-client tests share: cancelproxy and cancelproxy-mock as
// child processes whose JSON log lines are collected as records (what every
// test here uses), a proxy config builder, and a runner that prints
// "N passed, N failed". CP_BIN_DIR names the build directory.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BIN = process.env.CP_BIN_DIR || 'build';
export const tmp = mkdtempSync(join(tmpdir(), 'cp-sdk-'));
const procs = [];

// A child process whose JSON log lines are collected as records.
export function start(name, argv) {
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
export function waitRecord(proc, pred, ms = 5000) {
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

// The records of proc matching pred, now.
export function records(proc, pred) {
  return proc.records.filter(pred);
}

export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// cancelproxy-mock on a free port.
export async function mock(args = []) {
  const m = start('mock', [join(BIN, 'cancelproxy-mock'), '--listen', '127.0.0.1:0', ...args]);
  const r = await waitRecord(m, (x) => x.event === 'listening');
  m.port = r.port;
  return m;
}

// cancelproxy in front of upPort with one route /v1/; route adds members to
// it (cors, ...), upstream to the upstream (peer, ...), extra to the config
// (admin, clients, ...). The port and the admin port come from the
// "listening" records' port fields.
export async function proxy(name, upPort, { route = {}, upstream = {}, extra = {}, timeouts = {} } = {}) {
  const conf = {
    hop: name, workers: 1, listen: [{ address: '127.0.0.1:0' }],
    upstreams: { next: { url: `http://127.0.0.1:${upPort}`, timeouts_ms: timeouts, ...upstream } },
    routes: [{ path_prefix: '/v1/', upstream: 'next', ...route }],
    ...extra,
  };
  const file = join(tmp, `${name}-${procs.length}.json`);
  writeFileSync(file, JSON.stringify(conf));
  const h = start(name, [join(BIN, 'cancelproxy'), '-c', file]);
  const r = await waitRecord(h, (x) => x.event === 'listening' && x.role === 'proxy');
  h.port = r.port;
  if (conf.admin) h.adminPort = (await waitRecord(h, (x) => x.event === 'listening' && x.role === 'admin')).port;
  return h;
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// Asserts that the model saw its client go away before the answer was done,
// and that the proxy wrote exactly one cancel record for requestId (or for
// anything, when requestId is null) with the given origin kind.
export async function assertCanceled(hop, m, { kind = 'client_disconnect', requestId = null, phase = null } = {}) {
  const pred = (x) => x.event === 'cancel' && (requestId === null || x.request_id === requestId);
  const c = await waitRecord(hop, pred);
  assert(c.origin.kind === kind, `origin ${c.origin.kind}, expected ${kind}`);
  if (phase) assert(c.phase === phase, `phase ${c.phase}, expected ${phase}`);
  const s = await waitRecord(m, (x) => x.event === 'mock_stream');
  assert(s.outcome === 'client_fin' || s.outcome === 'client_rst', `mock saw ${s.outcome}`);
  assert(s.tokens_sent < 1000, `the model kept generating: ${s.tokens_sent}`);
  console.log(`  # ${c.origin.kind} ${c.phase}: detect_to_close_us=${c.detect_to_close_us}, ` +
    `model sent ${s.tokens_sent} tokens, saw ${s.outcome}`);
  await sleep(200);	// a second record would come within this
  const n = records(hop, pred).length;
  assert(n === 1, `${n} cancel records`);
  return { cancel: c, stream: s };
}

// Runs each test, killing its processes after it; prints the tally and
// exits 1 if any failed. after runs once at the end.
export async function run(tests, after = async () => {}) {
  let passed = 0, failed = 0;
  const only = process.env.CP_TEST_ONLY;
  for (const [name, fn] of Object.entries(tests)) {
    if (only && !name.includes(only)) continue;
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
  await after();
  rmSync(tmp, { recursive: true, force: true });
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
