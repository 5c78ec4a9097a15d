// Evaluates flags with the OpenFeature JavaScript server SDK and its OFREP provider, a client
// that flagops did not write, against the OFREP base URL given as the first argument.
// Reads a JSON list of cases on stdin: [{flag, type, default, context}], where type is
// boolean, string, number or object. Prints a JSON list of evaluation details on stdout.
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const baseUrl = process.argv[2];
if (!baseUrl) {
  console.error('usage: node harness.mjs <ofrep-base-url> < cases.json');
  process.exit(2);
}

let input = '';
for await (const chunk of process.stdin) input += chunk;
const cases = JSON.parse(input);

await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl }));
const client = OpenFeature.getClient();
const getters = {
  boolean: client.getBooleanDetails.bind(client),
  string: client.getStringDetails.bind(client),
  number: client.getNumberDetails.bind(client),
  object: client.getObjectDetails.bind(client),
};

const results = [];
for (const c of cases) {
  const get = getters[c.type];
  if (!get) throw new Error(`unknown type ${c.type} for flag ${c.flag}`);
  const d = await get(c.flag, c.default, c.context ?? {});
  results.push({
    flag: d.flagKey,
    type: c.type,
    value: d.value,
    reason: d.reason ?? null,
    variant: d.variant ?? null,
    errorCode: d.errorCode ?? null,
    flagMetadata: d.flagMetadata ?? {},
  });
}
await OpenFeature.close();
process.stdout.write(JSON.stringify(results));
