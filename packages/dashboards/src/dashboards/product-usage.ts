/**
 * Product and usage: what people do in the product (business events), how far they get through the
 * shop's funnel, and how many people chose not to share each category of telemetry; and in the browser
 * (@sonde/web): visits, devices and browsers, a funnel whose steps are a dashboard variable, and how
 * fast pages feel (Core Web Vitals). Written for product and business readers: no span names; the one
 * percentile is the Core Web Vitals' own (the 75th, with Google's good / poor thresholds), next to the
 * share of page views rated good, needs improvement and poor.
 *
 * Shares of people come from `sonde_consent_people` (distinct people per consent category and
 * choice, estimated by the receiver from consent choice records): people, not requests. They stand
 * next to the usage figures because those figures only cover the people who agreed (selection bias).
 */
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as text from '@grafana/grafana-foundation-sdk/text';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { baseDashboard, JOB, promql, queryVariable, standardVariables } from '../common';
import { row } from '../layout';

export const PRODUCT_USAGE_UID = 'sonde-product-usage';

const EVENTS = 'sonde_events_total{service=~"$service"}';
/** Distinct people per category and choice in a window (24h or 7d): receiver-wide, not per service. */
const people = (window: '24h' | '7d', choice?: string) =>
  `sonde_consent_people{window="${window}"${choice ? `, choice="${choice}"` : ''}}`;
/** The share of people who made `choice` for each category, of all people counted for it (no series for a category without people). */
export const peopleShare = (choice: string, window: '24h' | '7d', category?: string) => {
  const sel = (c?: string) =>
    category ? people(window, c).replace('}', `, category="${category}"}`) : people(window, c);
  return `sum by (category) (${sel(choice)}) / (sum by (category) (${sel()}) > 0)`;
};
const SELECTION_BIAS_NOTE = `**Who these figures cover.** Events, funnels and features count only what people who agreed to product analytics did. People who said no (or made no choice, where product analytics is off until granted) are invisible in them, and they may behave differently: a feature used mostly by privacy-minded people looks less used than it is.

**People, not requests.** "Share of people" panels count each person once per window (last 24 hours, last 7 days), from the choices people made, estimated with a HyperLogLog sketch (standard error about 0.8%). Someone who changed their mind within the window counts under both answers. They count people of every service together; the service filter does not apply to them.`;

/** The shop's funnel, in order: event name and how a reader would say it. */
export const FUNNEL: [string, string][] = [
  ['product.viewed', '1. Looked at a product'],
  ['cart.item_added', '2. Put something in the cart'],
  ['checkout.started', '3. Started to pay'],
  ['checkout.completed', '4. Paid'],
];

/** The default steps of the browser funnel (the $funnel_steps variable): the demo shop page's events. */
export const FUNNEL_STEPS = ['shop.product_opened', 'shop.cart_added', 'shop.checkout_clicked'];

/** Visits: session starts of pages instrumented by @sonde/web. */
const VISITS = `sonde_events_total{service=~"$service", event_name="session.start"}`;

/**
 * Core Web Vitals from @sonde/web: histograms by page_route and web_vitals_rating, one observation per
 * page view that reported the vital (the receiver sums the pages' delta points). `good` and `poor` are
 * the thresholds web-vitals rates with (good up to `good`, poor above `poor`).
 */
export const WEB_VITALS: {
  key: string;
  metric: string;
  title: string;
  what: string;
  unit: string;
  good: number;
  poor: number;
}[] = [
  {
    key: 'LCP',
    metric: 'web_vitals_lcp_milliseconds',
    title: 'Loading: largest contentful paint',
    what: 'how long until the main content of the page (its largest image or text block) is shown',
    unit: units.Milliseconds,
    good: 2500,
    poor: 4000,
  },
  {
    key: 'INP',
    metric: 'web_vitals_inp_milliseconds',
    title: 'Responsiveness: interaction to next paint',
    what: 'how long the page takes to respond visibly to a click, tap or key press (the slowest of the visit, roughly)',
    unit: units.Milliseconds,
    good: 200,
    poor: 500,
  },
  {
    key: 'CLS',
    metric: 'web_vitals_cls',
    title: 'Visual stability: cumulative layout shift',
    what: 'how much the content jumps around while people read it (a score: 0 is none)',
    unit: units.NoUnit,
    good: 0.1,
    poor: 0.25,
  },
  {
    key: 'TTFB',
    metric: 'web_vitals_ttfb_milliseconds',
    title: 'Server response: time to first byte',
    what: 'how long until the first byte of the page arrives from the server',
    unit: units.Milliseconds,
    good: 800,
    poor: 1800,
  },
];

const vitalSelector = (metric: string, suffix: 'bucket' | 'count') => `${metric}_${suffix}{${JOB}}`;
/** The 75th percentile of a vital over the selected period, by page route. */
export const vitalP75 = (metric: string) =>
  `sort_desc(histogram_quantile(0.75, sum by (le, page_route) (increase(${vitalSelector(metric, 'bucket')}[$__range]))))`;
/** The share of page views per rating (good, needs-improvement, poor) of a vital over the selected period. */
export const vitalRatingShare = (metric: string) => {
  const count = `increase(${vitalSelector(metric, 'count')}[$__range])`;
  return `sum by (web_vitals_rating) (${count}) / ignoring (web_vitals_rating) group_left () (sum (${count}) > 0)`;
};

const WEB_VITALS_NOTE = `**How fast pages feel**, measured in visitors' browsers (Core Web Vitals, by @sonde/web), for page views of people who allow performance data.

**The 75th percentile** is the figure Google's Core Web Vitals assessment uses: three page views in four were at least this good. A page (route) is in good shape when its 75th percentile is in the green: loading up to 2.5 s, responsiveness up to 200 ms, layout shift up to 0.1, server response up to 0.8 s; red is poor (above 4 s, 500 ms, 0.25, 1.8 s).

**Ratings** count page views: each page view that reported a vital counts once, rated good, needs improvement or poor by those thresholds. A page view someone left before it finished loading, or never interacted with, reports fewer vitals.`;

function vitalThresholds(v: { good: number; poor: number }): dashboard.ThresholdsConfigBuilder {
  return new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps([
    { value: null, color: 'green' },
    { value: v.good, color: 'orange' },
    { value: v.poor, color: 'red' },
  ]);
}

const increase = (eventName: string) =>
  `sum(increase(sonde_events_total{service=~"$service", event_name="${eventName}"}[$__range]))`;

export function productUsage(): dashboard.Dashboard {
  const d = baseDashboard(
    PRODUCT_USAGE_UID,
    'Sonde / Product and usage',
    'What people do in the product and how far they get, from the events the services record, and how many people chose not to share each kind of data.',
  );
  for (const v of standardVariables()) d.withVariable(v);
  d.withVariable(
    queryVariable(
      'funnel_steps',
      'Funnel steps',
      'label_values(sonde_events_total{service=~"$service"}, event_name)',
      'The events that make up the browser funnel panel, in the order people go through them',
    )
      .includeAll(false)
      .sort(dashboard.VariableSort.Disabled)
      .current({ selected: true, text: FUNNEL_STEPS, value: FUNNEL_STEPS }),
  );
  const funnel = new bargauge.PanelBuilder()
    .title('How far people get')
    .description(
      'How many times each step of the purchase path happened in the selected period: looked at a product, put it in the cart, started to pay, paid.',
    )
    .unit(units.Short)
    .orientation(common.VizOrientation.Horizontal)
    .displayMode(common.BarGaugeDisplayMode.Gradient);
  FUNNEL.forEach(([event, label], i) => {
    funnel.withTarget(promql(increase(event), label, String.fromCharCode(65 + i)).instant());
  });
  row(d, 'What people do', [
    new timeseries.PanelBuilder()
      .title('Events per minute')
      .description('How often each thing people do in the product happens, per minute (one line per event name).')
      .unit(units.EventsPerMinute)
      .withTarget(promql(`sum by (event_name) (rate(${EVENTS}[$__rate_interval])) * 60`, '{{event_name}}')),
    new bargauge.PanelBuilder()
      .title('Most used features')
      .description('How many times each event happened in the selected period, most frequent first.')
      .unit(units.Short)
      .orientation(common.VizOrientation.Horizontal)
      .withTarget(promql(`sort_desc(sum by (event_name) (increase(${EVENTS}[$__range])))`, '{{event_name}}').instant()),
    new stat.PanelBuilder()
      .title('Share of people these figures cover')
      .description(
        'Of the people who made a choice about product analytics, the share who agreed, over the last 24 hours and the last 7 days. Events come only from them: the rest are not in the figures on the left.',
      )
      .unit(units.PercentUnit)
      .min(0)
      .max(1)
      .withTarget(promql(peopleShare('granted', '24h', 'product'), 'last 24 hours', 'A').instant())
      .withTarget(promql(peopleShare('granted', '7d', 'product'), 'last 7 days', 'B').instant()),
  ]);
  row(d, 'Purchase path', [
    funnel,
    new stat.PanelBuilder()
      .title('People who paid, of those who started to pay')
      .description('Completed checkouts divided by started checkouts in the selected period.')
      .unit(units.PercentUnit)
      .withTarget(
        promql(`${increase('checkout.completed')} / ${increase('checkout.started')}`, 'conversion').instant(),
      ),
    new stat.PanelBuilder()
      .title('Failed payments')
      .description('How many payments failed in the selected period (0 when people checked out and none failed).')
      .unit(units.Short)
      .withTarget(
        promql(`${increase('payment.failed')} or 0 * ${increase('checkout.started')}`, 'failed payments').instant(),
      ),
  ]);
  row(d, 'In the browser', [
    new stat.PanelBuilder()
      .title('Visits')
      .description(
        'Visits (sessions) of the pages instrumented by @sonde/web in the selected period, of people who allow product analytics.',
      )
      .unit(units.Short)
      .withTarget(promql(`sum(increase(${VISITS}[$__range]))`, 'visits').instant()),
    new bargauge.PanelBuilder()
      .title('Visits by device')
      .description('Visits in the selected period by kind of device (mobile, tablet, desktop).')
      .unit(units.Short)
      .orientation(common.VizOrientation.Horizontal)
      .withTarget(
        promql(`sort_desc(sum by (device_type) (increase(${VISITS}[$__range])))`, '{{device_type}}').instant(),
      ),
    new bargauge.PanelBuilder()
      .title('Visits by browser')
      .description('Visits in the selected period by browser (name only; versions are in the raw data).')
      .unit(units.Short)
      .orientation(common.VizOrientation.Horizontal)
      .withTarget(
        promql(`sort_desc(sum by (browser_name) (increase(${VISITS}[$__range])))`, '{{browser_name}}').instant(),
      ),
    new bargauge.PanelBuilder()
      .title('Funnel (steps chosen above)')
      .description(
        'How many times each step of the funnel happened in the browser in the selected period. The steps are the Funnel steps variable at the top: pick the events of the path you care about.',
      )
      .unit(units.Short)
      .orientation(common.VizOrientation.Horizontal)
      .displayMode(common.BarGaugeDisplayMode.Gradient)
      .withTarget(
        promql(
          // :pipe: the event names as they are (their dots match themselves), as one alternation.
          // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variable syntax, substituted by Grafana
          'sort_desc(sum by (event_name) (increase(sonde_events_total{service=~"$service", event_name=~"${funnel_steps:pipe}"}[$__range])))',
          '{{event_name}}',
        ).instant(),
      ),
  ]);
  row(
    d,
    'How fast pages feel (Core Web Vitals)',
    WEB_VITALS.map((v) =>
      new bargauge.PanelBuilder()
        .title(`${v.title} (${v.key}), 75th percentile by page`)
        .description(
          `${v.key}: ${v.what}. Three page views in four were at least this good in the selected period, per page (route). Green is good, orange needs improvement, red is poor.`,
        )
        .unit(v.unit)
        .min(0)
        .orientation(common.VizOrientation.Horizontal)
        .thresholds(vitalThresholds(v))
        .withTarget(promql(vitalP75(v.metric), '{{page_route}}').instant()),
    ),
  );
  const shares = new bargauge.PanelBuilder()
    .title('Page views rated good, needs improvement, poor')
    .description(
      'For each Core Web Vital, the share of page views in the selected period that were good, needed improvement or were poor (all pages together).',
    )
    .unit(units.PercentUnit)
    .min(0)
    .max(1)
    .orientation(common.VizOrientation.Horizontal);
  WEB_VITALS.forEach((v, i) => {
    shares.withTarget(
      promql(vitalRatingShare(v.metric), `${v.key}: {{web_vitals_rating}}`, String.fromCharCode(65 + i)).instant(),
    );
  });
  row(d, 'Core Web Vitals: ratings', [
    shares,
    new text.PanelBuilder()
      .title('About Core Web Vitals')
      .description('What the web-vitals panels measure, the 75th percentile, and the thresholds.')
      .mode(text.TextMode.Markdown)
      .content(WEB_VITALS_NOTE),
  ]);
  row(d, 'Privacy choices', [
    new bargauge.PanelBuilder()
      .title('Share of people who said no, by kind of data')
      .description(
        'Of the people who made a choice in the last 24 hours, the share who refused each category of telemetry (diagnostics, performance, product): people, not requests. What they did is invisible in the other panels.',
      )
      .unit(units.PercentUnit)
      .min(0)
      .max(1)
      .orientation(common.VizOrientation.Horizontal)
      .withTarget(promql(peopleShare('denied', '24h'), '{{category}}').instant()),
    new timeseries.PanelBuilder()
      .title('People by choice (last 24 hours)')
      .description(
        'Distinct people who said yes (granted), said no (denied) or made no choice (default) for each category within the 24 hours before each point.',
      )
      .unit(units.Short)
      .withTarget(promql(`sum by (category, choice) (${people('24h')})`, '{{category}}: {{choice}}')),
    new text.PanelBuilder()
      .title('About these figures')
      .description('Which people the usage figures cover (selection bias), and how people are counted.')
      .mode(text.TextMode.Markdown)
      .content(SELECTION_BIAS_NOTE),
  ]);
  return d.build();
}
