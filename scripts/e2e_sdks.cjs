// The Node half of scripts/e2e_sdks.py: the `openai` and `@anthropic-ai/sdk` packages against a
// running gateway in front of `fake_kiro --script tools` (the Python script starts both and runs
// this with E2E_GATEWAY_URL and E2E_KEY set, and NODE_PATH pointing at the packages).
//
//     npm i --prefix ~/e2e-node openai @anthropic-ai/sdk
//     python3 scripts/e2e_sdks.py --node ~/e2e-node/node_modules
//
// Checks the streaming helpers (`chat.completions.stream().finalChatCompletion()`, `runTools`,
// `responses.stream().finalResponse()`, `messages.stream().finalMessage()`, the beta
// `toolRunner`), a Responses tool loop, and the error classes each SDK raises for Kiro faults
// (`KIRO_FAULT:<name>` in the user message), a wrong key and a stream that breaks mid-answer.
// Prints `ok`/`FAIL` lines like the Python script; exit status 1 when a check failed.
'use strict';

const OpenAI = require('openai');
const Anthropic = require('@anthropic-ai/sdk');

const BASE = process.env.E2E_GATEWAY_URL;
const KEY = process.env.E2E_KEY;
const MODEL = 'claude-sonnet-4.5';
const WEATHER = { Paris: '18 C, sunny', Oslo: '5 C, rain' };
const PARAMS = {
  type: 'object',
  properties: { city: { type: 'string' }, unit: { type: 'string' } },
  required: ['city'],
};
const CHAT_TOOL = {
  type: 'function',
  function: { name: 'get_weather', description: 'Current weather for a city', parameters: PARAMS },
};
const ASK = 'Compare the weather in Paris and Oslo.';

const getWeather = ({ city }) => WEATHER[city] || 'unknown';
const user = (text) => [{ role: 'user', content: text }];
const fault = (name) => `Tell me something. KIRO_FAULT:${name}`;

function expect(cond, what) {
  if (!cond) throw new Error(typeof what === 'string' ? what : JSON.stringify(what));
}

function answers(text) {
  expect(Object.values(WEATHER).every((v) => text.includes(v)), `answer ${JSON.stringify(text)}`);
}

let failures = 0;
async function run(sdk, check, fn) {
  try {
    const detail = (await fn()) || '';
    console.log(`ok   ${sdk.padEnd(18)} ${check.padEnd(28)} ${detail}`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${sdk.padEnd(18)} ${check.padEnd(28)} ${e && e.constructor.name}: ${e && e.message}`);
  }
}

async function raised(fn) {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error('no exception');
}

function statusError(e, cls, status, words) {
  expect(e instanceof cls, `${e.constructor.name} is not a ${cls.name}: ${e.message}`);
  expect(e.status === status, `status ${e.status}, want ${status}`);
  expect(e.message.toLowerCase().includes(words.toLowerCase()), `message ${e.message}`);
  return `${e.constructor.name} ${e.status}`;
}

// ---- openai ------------------------------------------------------------------------------------

async function openaiChecks() {
  const client = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: KEY, maxRetries: 0 });
  const sdk = 'openai (node)';

  await run(sdk, 'chat create', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: user('Say hi.') });
    expect(r.object === 'chat.completion' && r.choices[0].message.content, r);
    expect(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0, r.usage);
    return `usage ${r.usage.prompt_tokens}+${r.usage.completion_tokens}`;
  });
  await run(sdk, 'chat .stream() final', async () => {
    const stream = client.chat.completions.stream({ model: MODEL, messages: user('Say hi.') });
    let text = '';
    stream.on('content', (delta) => (text += delta));
    const final = await stream.finalChatCompletion();
    expect(text && final.choices[0].message.content === text, [text, final.choices[0]]);
    return 'finalChatCompletion matches the deltas';
  });
  for (const stream of [false, true]) {
    await run(sdk, `chat runTools${stream ? ' stream' : ''}`, async () => {
      const runner = client.chat.completions.runTools({
        model: MODEL,
        messages: user(ASK),
        stream,
        tools: [
          {
            type: 'function',
            function: { ...CHAT_TOOL.function, function: getWeather, parse: JSON.parse },
          },
        ],
      });
      const content = await runner.finalContent();
      answers(content);
      const calls = (await runner.allChatCompletions()).length - 1;
      return `${calls} tool steps, then the answer`;
    });
  }
  await run(sdk, 'responses create', async () => {
    const r = await client.responses.create({ model: MODEL, input: 'Say hi.' });
    expect(r.object === 'response' && r.status === 'completed' && r.output_text, r);
    return `usage ${r.usage.input_tokens}+${r.usage.output_tokens}`;
  });
  await run(sdk, 'responses .stream() final', async () => {
    const stream = client.responses.stream({ model: MODEL, input: 'Say hi.' });
    let text = '';
    stream.on('response.output_text.delta', (e) => (text += e.delta));
    const final = await stream.finalResponse();
    expect(text && final.output_text === text, [text, final.output_text]);
    return 'finalResponse matches the deltas';
  });
  await run(sdk, 'responses tool loop stream', async () => {
    const input = [{ role: 'user', content: ASK }];
    for (let step = 0; step < 4; step++) {
      const resp = await client.responses
        .stream({ model: MODEL, input, tools: [{ type: 'function', ...CHAT_TOOL.function }] })
        .finalResponse();
      const calls = resp.output.filter((o) => o.type === 'function_call');
      if (!calls.length) {
        answers(resp.output_text);
        return `${step} tool steps, then the answer`;
      }
      input.push(...resp.output);
      for (const c of calls) {
        input.push({
          type: 'function_call_output',
          call_id: c.call_id,
          output: getWeather(JSON.parse(c.arguments)),
        });
      }
    }
    throw new Error('the loop never ended');
  });

  const faults = [
    ['throttle', OpenAI.RateLimitError, 429, 'Too many requests'],
    ['quota', OpenAI.RateLimitError, 429, 'limit for this month'],
    ['too_long', OpenAI.BadRequestError, 400, 'Input is too long'],
    ['403', OpenAI.PermissionDeniedError, 403, 'not authorized'],
    ['503', OpenAI.InternalServerError, 503, 'temporarily unavailable'],
  ];
  for (const [name, cls, status, words] of faults) {
    await run(sdk, `chat ${name}`, async () => {
      const e = await raised(() =>
        client.chat.completions.create({ model: MODEL, messages: user(fault(name)) }),
      );
      const detail = statusError(e, cls, status, words);
      if (name === 'quota') expect(e.code === 'insufficient_quota', `code ${e.code}`);
      if (name === 'too_long') expect(e.code === 'context_length_exceeded', `code ${e.code}`);
      return `${detail} code=${e.code}`;
    });
    await run(sdk, `responses stream ${name}`, async () => {
      const e = await raised(() =>
        client.responses.stream({ model: MODEL, input: fault(name) }).finalResponse(),
      );
      return statusError(e, cls, status, words);
    });
  }
  await run(sdk, 'chat bad key', async () => {
    const bad = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: 'wrong-key-0123456789', maxRetries: 0 });
    const e = await raised(() => bad.chat.completions.create({ model: MODEL, messages: user('hi') }));
    return statusError(e, OpenAI.AuthenticationError, 401, '');
  });
  await run(sdk, 'chat stream breaks', async () => {
    let text = '';
    const e = await raised(async () => {
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: user(fault('exception')),
        stream: true,
      });
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content || '';
    });
    expect(e instanceof OpenAI.APIError, `${e.constructor.name}: ${e.message}`);
    expect(text.startsWith('The answer starts here'), text);
    expect(e.message.includes('boom in the middle'), e.message);
    return `${e.constructor.name} after ${text.length} chars`;
  });
  await run(sdk, 'chat .stream() breaks', async () => {
    const e = await raised(() =>
      client.chat.completions.stream({ model: MODEL, messages: user(fault('cut')) }).finalChatCompletion(),
    );
    expect(e instanceof OpenAI.APIError, `${e.constructor.name}: ${e.message}`);
    return `${e.constructor.name}: ${e.message.slice(0, 50)}`;
  });
  await run(sdk, 'responses stream breaks', async () => {
    // The helper ends on `response.failed` like on `response.completed`: finalResponse() is the
    // failed response, with its error and the output produced so far.
    const stream = client.responses.stream({ model: MODEL, input: fault('exception') });
    let failed = null;
    stream.on('response.failed', (ev) => (failed = ev.response));
    const final = await stream.finalResponse();
    expect(failed && failed.error && failed.error.message.includes('boom'), failed);
    expect(final.status === 'failed' && final.output_text.startsWith('The answer starts here'), final);
    return `response.failed, finalResponse() status ${final.status} with the partial text`;
  });
  await run(sdk, 'next request served', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: user('Say hi.') });
    expect(r.choices[0].message.content, r);
  });
}

// ---- anthropic ---------------------------------------------------------------------------------

async function anthropicChecks() {
  const client = new Anthropic({ baseURL: BASE, apiKey: KEY, maxRetries: 0 });
  const sdk = 'anthropic (node)';
  const tool = { name: 'get_weather', description: 'Current weather for a city', input_schema: PARAMS };

  await run(sdk, 'messages create', async () => {
    const m = await client.messages.create({ model: MODEL, max_tokens: 256, messages: user('Say hi.') });
    expect(m.content.length === 1 && m.content[0].type === 'text', m.content);
    return `usage ${m.usage.input_tokens}+${m.usage.output_tokens}`;
  });
  await run(sdk, 'stream finalMessage', async () => {
    const stream = client.messages.stream({ model: MODEL, max_tokens: 256, messages: user('Say hi.') });
    let text = '';
    stream.on('text', (t) => (text += t));
    const final = await stream.finalMessage();
    expect(text && final.content[0].text === text, [text, final.content]);
    expect(final.stop_reason === 'end_turn' && final.usage.output_tokens > 0, final);
    return 'finalMessage matches the text events';
  });
  await run(sdk, 'tool loop stream', async () => {
    const messages = user(ASK);
    for (let step = 0; step < 4; step++) {
      const m = await client.messages
        .stream({ model: MODEL, max_tokens: 1024, messages, tools: [tool] })
        .finalMessage();
      const uses = m.content.filter((b) => b.type === 'tool_use');
      if (!uses.length) {
        answers(m.content.filter((b) => b.type === 'text').map((b) => b.text).join(''));
        return `${step} tool steps, then the answer`;
      }
      messages.push({ role: 'assistant', content: m.content });
      messages.push({
        role: 'user',
        content: uses.map((u) => ({ type: 'tool_result', tool_use_id: u.id, content: getWeather(u.input) })),
      });
    }
    throw new Error('the loop never ended');
  });
  await run(sdk, 'beta toolRunner', async () => {
    const { betaTool } = require('@anthropic-ai/sdk/helpers/beta/json-schema');
    const final = await client.beta.messages.toolRunner({
      model: MODEL,
      max_tokens: 1024,
      messages: user(ASK),
      tools: [
        betaTool({ name: 'get_weather', description: 'Current weather for a city', inputSchema: PARAMS, run: getWeather }),
      ],
    });
    answers(final.content.filter((b) => b.type === 'text').map((b) => b.text).join(''));
    return 'ran the tool twice, then the answer';
  });
  await run(sdk, 'count_tokens', async () => {
    const n = await client.messages.countTokens({ model: MODEL, messages: user(ASK), tools: [tool] });
    expect(n.input_tokens > 0, n);
    return `${n.input_tokens} tokens`;
  });

  const faults = [
    ['throttle', Anthropic.RateLimitError, 429, 'Too many requests'],
    ['quota', Anthropic.RateLimitError, 429, 'limit for this month'],
    ['too_long', Anthropic.BadRequestError, 400, 'prompt is too long'],
    ['403', Anthropic.PermissionDeniedError, 403, 'not authorized'],
    ['503', Anthropic.OverloadedError, 529, 'temporarily unavailable'],
  ];
  for (const [name, cls, status, words] of faults) {
    await run(sdk, `${name}`, async () => {
      const e = await raised(() =>
        client.messages.create({ model: MODEL, max_tokens: 64, messages: user(fault(name)) }),
      );
      return statusError(e, cls, status, words);
    });
    await run(sdk, `${name} stream`, async () => {
      const e = await raised(() =>
        client.messages.stream({ model: MODEL, max_tokens: 64, messages: user(fault(name)) }).finalMessage(),
      );
      return statusError(e, cls, status, words);
    });
  }
  await run(sdk, 'bad key', async () => {
    const bad = new Anthropic({ baseURL: BASE, apiKey: 'wrong-key-0123456789', maxRetries: 0 });
    const e = await raised(() => bad.messages.create({ model: MODEL, max_tokens: 64, messages: user('hi') }));
    return statusError(e, Anthropic.AuthenticationError, 401, '');
  });
  await run(sdk, 'stream breaks', async () => {
    const stream = client.messages.stream({ model: MODEL, max_tokens: 64, messages: user(fault('exception')) });
    let text = '';
    stream.on('text', (t) => (text += t));
    const e = await raised(() => stream.finalMessage());
    expect(e instanceof Anthropic.APIError, `${e.constructor.name}: ${e.message}`);
    expect(text.startsWith('The answer starts here'), text);
    expect(e.message.includes('boom in the middle'), e.message);
    return `${e.constructor.name} after ${text.length} chars`;
  });
  await run(sdk, 'next request served', async () => {
    const m = await client.messages.create({ model: MODEL, max_tokens: 64, messages: user('Say hi.') });
    expect(m.content[0].text, m);
  });
}

(async () => {
  if (!BASE || !KEY) {
    console.error('E2E_GATEWAY_URL and E2E_KEY must be set (scripts/e2e_sdks.py does that)');
    process.exit(2);
  }
  await openaiChecks();
  await anthropicChecks();
  process.exit(failures ? 1 : 0);
})();
