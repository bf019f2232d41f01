// Real clients through cancelproxy: the Vercel AI SDK (`ai` with
// `@ai-sdk/openai`) streams and is stopped the way apps stop it, through
// streamText's abortSignal; the model's stream must close and the proxy
// write one cancel record. Usage: CP_BIN_DIR=build node tests/sdk/vercel_ai.mjs
import { streamText } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { mock, proxy, run, assert, assertCanceled, waitRecord } from './lib.mjs';

// The chat completions API of the mock, as apps point the SDK at a gateway.
function model(port) {
  return createOpenAI({ apiKey: 'sk-test-not-real', baseURL: `http://127.0.0.1:${port}/v1` }).chat('mock-1');
}

await run({
  async 'streamText to the end'() {
    const m = await mock(['--first-token-ms', '10', '--interval-ms', '5', '--tokens', '8']);
    const edge = await proxy('edge', m.port);
    const r = streamText({ model: model(edge.port), prompt: 'hi', maxRetries: 0 });
    let text = '';
    for await (const t of r.textStream) text += t;
    assert(text.split('tok').length - 1 === 8, `text ${JSON.stringify(text)}`);
    const rec = await waitRecord(edge, (x) => x.event === 'request');
    assert(rec.outcome === 'completed', `outcome ${rec.outcome}`);
  },

  async 'abortSignal mid-stream closes the model stream'() {
    const m = await mock(['--first-token-ms', '10', '--interval-ms', '20', '--tokens', '10000']);
    const edge = await proxy('edge', m.port);
    const ac = new AbortController();
    const r = streamText({ model: model(edge.port), prompt: 'hi', abortSignal: ac.signal, maxRetries: 0 });
    let n = 0, err = null;
    try {
      for await (const _ of r.textStream) if (++n === 3) ac.abort();
    } catch (e) { err = e; }
    assert(n >= 3 && n < 100, `chunks ${n} (err ${err})`);
    await assertCanceled(edge, m, { phase: 'streaming' });
  },

  async 'abortSignal before the first token'() {
    const m = await mock(['--first-token-ms', '60000']);
    const edge = await proxy('edge', m.port);
    const ac = new AbortController();
    const r = streamText({ model: model(edge.port), prompt: 'hi', abortSignal: ac.signal, maxRetries: 0 });
    const done = (async () => { for await (const _ of r.textStream) { /* nothing comes */ } })().catch(() => {});
    await waitRecord(m, (x) => x.event === 'mock_request');
    ac.abort();
    await done;
    const { stream } = await assertCanceled(edge, m, { phase: 'waiting_first_byte' });
    assert(stream.phase === 'waiting_first_token', `mock phase ${stream.phase}`);
  },
});
