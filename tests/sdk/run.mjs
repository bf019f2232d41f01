// Real clients through cancelproxy: the official OpenAI SDK (Node) streams,
// aborts mid-stream, and gets errors that name the hop where they started.
// Usage: CP_BIN_DIR=build node tests/sdk/run.mjs  (prints "N passed, N failed")
import OpenAI from 'openai';
import { mock, proxy, waitRecord, assert, run } from './lib.mjs';

// A hop in front of upPort; peer: its upstream is another cancelproxy.
function hop(name, upPort, { peer = false, timeouts = {} } = {}) {
  return proxy(name, upPort, { timeouts, upstream: { peer } });
}

function client(port) {
  return new OpenAI({ apiKey: 'sk-test-not-real', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0, timeout: 20000 });
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

await run(tests);
