// Real clients through cancelproxy: Anthropic's TypeScript SDK
// (`@anthropic-ai/sdk`) streams a Messages answer and stops it the way apps
// do, with stream.abort(); the model's stream must close and the proxy
// write one cancel record. Usage: CP_BIN_DIR=build node tests/sdk/anthropic.mjs
import Anthropic from '@anthropic-ai/sdk';
import { mock, proxy, run, assert, assertCanceled, waitRecord } from './lib.mjs';

function client(port) {
  return new Anthropic({ apiKey: 'sk-ant-test-not-real', baseURL: `http://127.0.0.1:${port}`, maxRetries: 0, timeout: 20000 });
}

const ask = { model: 'mock-1', max_tokens: 1024, messages: [{ role: 'user', content: 'hi' }] };

await run({
  async 'messages.stream to the end'() {
    const m = await mock(['--first-token-ms', '10', '--interval-ms', '5', '--tokens', '8']);
    const edge = await proxy('edge', m.port);
    const msg = await client(edge.port).messages.stream(ask).finalMessage();
    assert(msg.content[0].text.split('tok').length - 1 === 8, `text ${JSON.stringify(msg.content)}`);
    const rec = await waitRecord(edge, (x) => x.event === 'request');
    assert(rec.outcome === 'completed', `outcome ${rec.outcome}`);
  },

  async 'stream.abort() mid-stream closes the model stream'() {
    const m = await mock(['--first-token-ms', '10', '--interval-ms', '20', '--tokens', '10000']);
    const edge = await proxy('edge', m.port);
    const stream = client(edge.port).messages.stream(ask);
    let n = 0;
    stream.on('text', () => { if (++n === 3) stream.abort(); });
    let err = null;
    try { await stream.done(); } catch (e) { err = e; }
    assert(err && /abort/i.test(err.name + err.message), `no abort error: ${err}`);
    await assertCanceled(edge, m, { phase: 'streaming' });
  },

  async 'stream.abort() before the first token'() {
    const m = await mock(['--first-token-ms', '60000']);
    const edge = await proxy('edge', m.port);
    const stream = client(edge.port).messages.stream(ask);
    const done = stream.done().catch(() => {});
    await waitRecord(m, (x) => x.event === 'mock_request');
    stream.abort();
    await done;
    const { stream: s } = await assertCanceled(edge, m, { phase: 'waiting_first_byte' });
    assert(s.phase === 'waiting_first_token', `mock phase ${s.phase}`);
  },
});
