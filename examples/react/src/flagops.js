// Small helpers for flagops through OpenFeature in the browser (docs/sdk-browser.md).

// overrideInfo returns the override that decides a flag, from its evaluation details
// (client.getStringDetails or a React SDK *Details hook): {kind: 'user'|'device', namespace,
// name, value, variant, expiresAt, reason}, or null when no override decides it. flagops names
// the deciding step in the flag's metadata.source: user-override:<namespace>/<name> or
// device-override:<namespace>/<name>, and gives the override's expiry (RFC 3339, UTC) and
// reason in metadata.overrideExpiresAt and metadata.overrideReason when it has them (null
// here when not). Seed 001's hasOverride(flag) is overrideInfo(...) !== null.
export function overrideInfo(details) {
  const metadata = details?.flagMetadata ?? {};
  const source = metadata.source ?? '';
  for (const kind of ['user', 'device']) {
    const prefix = `${kind}-override:`;
    if (source.startsWith(prefix)) {
      const [namespace, name] = source.slice(prefix.length).split('/', 2);
      return {
        kind,
        namespace,
        name,
        value: details.value,
        variant: details.variant,
        expiresAt: metadata.overrideExpiresAt ?? null,
        reason: metadata.overrideReason ?? null,
      };
    }
  }
  return null;
}

// prefetchedFetch returns a fetch for the OFREP web provider's fetchImplementation option that
// answers the provider's first bulk evaluation with a response the page's server prefetched
// for the same context ({body: the response's JSON text, etag: its ETag header}), and sends
// every other request to the network. The provider then becomes ready without a request, and
// opens the event stream that response advertises; its lastEventId names the prefetched
// values, so a change made since the prefetch is announced as soon as the stream opens.
export function prefetchedFetch(prefetched, fetchImpl = globalThis.fetch.bind(globalThis)) {
  let used = false;
  return (input, init) => {
    // Read the request without consuming its body, which the network may still need.
    const isRequest = input instanceof Request;
    const method = init?.method ?? (isRequest ? input.method : 'GET');
    const url = new URL(isRequest ? input.url : String(input), location.href);
    if (!used && method === 'POST' && url.pathname.endsWith('/ofrep/v1/evaluate/flags')) {
      used = true;
      return Promise.resolve(
        new Response(prefetched.body, {
          status: 200,
          headers: { 'Content-Type': 'application/json', ETag: prefetched.etag },
        }),
      );
    }
    return fetchImpl(input, init);
  };
}
