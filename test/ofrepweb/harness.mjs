// Runs the OpenFeature web SDK with its OFREP web provider, a client flagops did not write,
// under Node, with the eventsource package as the global EventSource. Driven by
// ofrepweb_test.go.
//
// Usage: node harness.mjs '<config JSON>'
// config: {baseUrl, token (optional: sent as "Authorization: Bearer"), context,
//          flags: [{flag, type: boolean|string|number|object, default}]}
//
// Prints one JSON object per line on stdout:
//   {"type":"advertised","eventStreams"}    eventStreams of each bulk response the provider gets
//   {"type":"eventsource","url"}            each EventSource the provider opens, with its URL
//   {"type":"ready","values"}               the provider is ready; values: flag -> details
//   {"type":"changed","flagsChanged","values"}  PROVIDER_CONFIGURATION_CHANGED, then evaluated
//   {"type":"stale"|"error","message"}      PROVIDER_STALE or PROVIDER_ERROR
// It runs until stdin closes.
import { EventSource } from 'eventsource';
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';

const cfg = JSON.parse(process.argv[2] ?? 'null');
if (!cfg?.baseUrl) {
  console.error(`usage: node harness.mjs '{"baseUrl":...,"context":{...},"flags":[...]}'`);
  process.exit(2);
}

const emit = (msg) => process.stdout.write(JSON.stringify(msg) + '\n');

// The provider constructs the global EventSource with the stream URL only, as a browser
// would; report each URL so that the test can compare it with the advertised one.
globalThis.EventSource = class extends EventSource {
  constructor(url, init) {
    super(url, init);
    emit({ type: 'eventsource', url: String(url) });
  }
};

const client = OpenFeature.getClient();
const getters = {
  boolean: client.getBooleanDetails.bind(client),
  string: client.getStringDetails.bind(client),
  number: client.getNumberDetails.bind(client),
  object: client.getObjectDetails.bind(client),
};
const values = () => {
  const out = {};
  for (const f of cfg.flags) {
    const d = getters[f.type](f.flag, f.default);
    out[f.flag] = { value: d.value, reason: d.reason ?? null, errorCode: d.errorCode ?? null };
  }
  return out;
};

client.addHandler(ProviderEvents.ConfigurationChanged, (ev) =>
  emit({ type: 'changed', flagsChanged: ev?.flagsChanged ?? [], values: values() }));
client.addHandler(ProviderEvents.Stale, (ev) => emit({ type: 'stale', message: ev?.message ?? '' }));
client.addHandler(ProviderEvents.Error, (ev) => emit({ type: 'error', message: ev?.message ?? '' }));

// Report the event streams each bulk response advertises, as the provider receives them.
const reportingFetch = async (input, init) => {
  const res = await fetch(input, init);
  if (res.status === 200) {
    try {
      const body = await res.clone().json();
      if (body.eventStreams !== undefined) emit({ type: 'advertised', eventStreams: body.eventStreams });
    } catch {
      // Not JSON: the provider reports it.
    }
  }
  return res;
};

const provider = new OFREPWebProvider({
  baseUrl: cfg.baseUrl,
  fetchImplementation: reportingFetch,
  headers: cfg.token ? [['Authorization', `Bearer ${cfg.token}`]] : undefined,
  // No persistent cache under Node (there is no localStorage), and no polling: changes
  // must arrive through the event stream.
  cacheMode: 'disabled',
  pollInterval: 0,
  changeDetection: 'sse',
});
try {
  await OpenFeature.setContext(cfg.context ?? {});
  await OpenFeature.setProviderAndWait(provider);
} catch (err) {
  emit({ type: 'error', message: `the provider did not become ready: ${err}` });
  process.exit(1);
}
emit({ type: 'ready', values: values() });

// Stay up until the test closes stdin.
process.stdin.resume();
process.stdin.on('end', async () => {
  await OpenFeature.close();
  process.exit(0);
});
