// The flagops React example: three components, each reading one flag through the OpenFeature
// React SDK, fed by the OFREP web provider, which holds every flag of the user's context and
// hears of changes through the event stream that the evaluator advertises. Each component
// counts its renders (data-renders), so that a change can be shown to re-render only the
// component whose flag changed. docs/sdk-browser.md explains each piece.
import { useLayoutEffect } from 'react';
import { createRoot } from 'react-dom/client';
import { OpenFeature } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import {
  OpenFeatureProvider,
  useBooleanFlagValue,
  useObjectFlagValue,
  useStringFlagDetails,
  useStringFlagValue,
} from '@openfeature/react-sdk';
import { overrideInfo, prefetchedFetch } from './flagops.js';

// config: {baseUrl, token?, context, prefetched?: {body, etag}}, written by the page's server.
const config = JSON.parse(document.getElementById('flagops-config').textContent);

// Each component counts its renders two ways. calls: each call of its function. commits: each
// render that React committed (its layout effects ran), which is what data-renders shows. React may
// call a component and then throw the result away, when a state update turned out to change
// nothing (docs/sdk-browser.md#re-renders): that is a call and not a commit.
const calls = {};
const commits = {};
window.flagopsExample = { calls, commits };

function useRenderCount(id) {
  calls[id] = (calls[id] ?? 0) + 1;
  useLayoutEffect(() => {
    commits[id] = (commits[id] ?? 0) + 1;
  });
  return (commits[id] ?? 0) + 1; // this render's number, once committed
}

function Flag({ id, flag, value, renders, children }) {
  const json = JSON.stringify(value);
  return (
    <li id={id} data-flag={flag} data-value={json} data-renders={renders}>
      <code>{flag}</code> = <output>{json}</output> {children} <small>({renders} renders)</small>
    </li>
  );
}

function Billing() {
  const renders = useRenderCount('billing');
  const enabled = useBooleanFlagValue('billing.enabled', false);
  return <Flag id="billing" flag="billing.enabled" value={enabled} renders={renders} />;
}

function Layout() {
  const renders = useRenderCount('layout');
  const layout = useStringFlagValue('checkout.layout', 'classic');
  return <Flag id="layout" flag="checkout.layout" value={layout} renders={renders} />;
}

function Limits() {
  const renders = useRenderCount('limits');
  const limits = useObjectFlagValue('billing.free_tier_limits', { maxStudents: 1, historyLimit: 5 });
  return <Flag id="limits" flag="billing.free_tier_limits" value={limits} renders={renders} />;
}

// LayoutOverride shows which override, if any, decides checkout.layout for this user (seed
// 001's hasOverride and getOverrideInfo), from the flag's metadata.
function LayoutOverride() {
  const renders = useRenderCount('layout-override');
  const info = overrideInfo(useStringFlagDetails('checkout.layout', 'classic'));
  const text = info ? `${info.kind} override ${info.namespace}/${info.name}` : 'none';
  return <Flag id="layout-override" flag="checkout.layout" value={text} renders={renders} />;
}

function App() {
  useRenderCount('app');
  return (
    <ul>
      <Billing />
      <Layout />
      <Limits />
      <LayoutOverride />
    </ul>
  );
}

async function main() {
  const provider = new OFREPWebProvider({
    baseUrl: config.baseUrl,
    // The context token: sent as a header on bulk evaluation; the event stream URI that the
    // evaluator advertises carries it as access_token, since EventSource sends no headers.
    headers: config.token ? [['Authorization', `Bearer ${config.token}`]] : undefined,
    // A prefetched bulk response answers the provider's first request, without the network.
    fetchImplementation: config.prefetched ? prefetchedFetch(config.prefetched) : undefined,
    // No copy in localStorage: the values come from the evaluator (or the page) on each load.
    cacheMode: 'disabled',
  });
  // For the browser's console, and for the test that evaluates seed 001's and 004's calls.
  Object.assign(window.flagopsExample, { client: OpenFeature.getClient(), provider, overrideInfo });
  await OpenFeature.setContext(config.context ?? {});
  // Rendering once the provider is ready means the first render already has the values: no
  // render with the defaults first. With a prefetched response this wait needs no network.
  await OpenFeature.setProviderAndWait(provider);
  createRoot(document.getElementById('root')).render(
    <OpenFeatureProvider>
      <App />
    </OpenFeatureProvider>,
  );
}

main().catch((err) => {
  const p = document.createElement('p');
  p.id = 'error';
  p.textContent = `flagops: ${err}`;
  document.body.append(p);
});
