// One gRPC server-streaming call with @grpc/grpc-js, for the integration
// tests (tests/integration/test_grpc.c), which assert on what it prints: one
// JSON line {"event": "grpc_result", ...} with the messages, the status code
// and message, the initial and trailing metadata, and the monotonic time
// (CLOCK_MONOTONIC, microseconds, the clock of the mock's and the proxy's
// records) at which it cancelled, if it did. Generic calls on raw bytes: no
// .proto file.
//
// usage: node grpc.mjs HOST:PORT METHOD [--metadata K=V]... [--timeout-ms N]
//                      [--cancel-after N] [--request S]
import grpc from '@grpc/grpc-js';

const monoUs = () => Number(process.hrtime.bigint() / 1000n);

function parseArgs(argv) {
  const a = { metadata: [], timeoutMs: 0, cancelAfter: null, request: 'hello' };
  [a.addr, a.method] = argv;
  for (let i = 2; i < argv.length; i += 2) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--metadata': a.metadata.push(v.split(/=(.*)/s).slice(0, 2)); break;
      case '--timeout-ms': a.timeoutMs = Number(v); break;
      case '--cancel-after': a.cancelAfter = Number(v); break;
      case '--request': a.request = v; break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return a;
}

const plain = (md) => {
  const out = {};
  for (const [k, v] of Object.entries(md.getMap())) out[k] = String(v);
  return out;
};

const args = parseArgs(process.argv.slice(2));
const result = {
  event: 'grpc_result', client: 'grpc-js', messages: [], code: null,
  details: null, initial: {}, trailing: {}, cancel_mono_us: null,
};
const start = monoUs();
const client = new grpc.Client(args.addr, grpc.credentials.createInsecure());
const md = new grpc.Metadata();
for (const [k, v] of args.metadata) md.add(k, v);
const opts = args.timeoutMs ? { deadline: Date.now() + args.timeoutMs } : {};
const call = client.makeServerStreamRequest(args.method, (x) => x, (x) => x,
  Buffer.from(args.request), md, opts);
call.on('metadata', (m) => { result.initial = plain(m); });
call.on('data', (d) => {
  result.messages.push(d.toString('utf8'));
  if (args.cancelAfter !== null && result.messages.length === args.cancelAfter) {
    result.cancel_mono_us = monoUs();
    call.cancel();
  }
});
call.on('error', () => {});
call.on('status', (s) => {
  result.code = grpc.status[s.code];
  result.details = s.details;
  result.trailing = plain(s.metadata);
  result.elapsed_ms = (monoUs() - start) / 1000;
  process.stdout.write(`${JSON.stringify(result)}\n`);
  client.close();
});
