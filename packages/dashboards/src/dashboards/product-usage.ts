/**
 * Product and usage: what people do in the product (business events), how far they get through the
 * shop's funnel, and how many chose not to share each category of telemetry; and in the browser
 * (@sonde/web): visits, devices and browsers, and a funnel whose steps are a dashboard variable. (Core
 * Web Vitals have no panel yet: the receiver's Prometheus store resets a series on each browser's
 * delta instead of summing them, so their histograms hold part of the data; see packages/web/README.md.) Written for product and business readers: no span names.
 */
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { baseDashboard, JOB, promql, queryVariable, ratio, standardVariables } from '../common';
import { row } from '../layout';

export const PRODUCT_USAGE_UID = 'sonde-product-usage';

const EVENTS = 'sonde_events_total{service=~"$service"}';
const CONSENT = `sonde_consent_decisions_total{${JOB}}`;
const OPTED_OUT = `sonde_consent_decisions_total{${JOB}, granted="false"}`;

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
  row(d, 'Privacy choices', [
    new bargauge.PanelBuilder()
      .title('Share of people who said no, by kind of data')
      .description(
        'Of the consent decisions in the selected period, the share that refused each category of telemetry (diagnostics, performance, product). What they did is invisible in the other panels.',
      )
      .unit(units.PercentUnit)
      .min(0)
      .max(1)
      .orientation(common.VizOrientation.Horizontal)
      .withTarget(
        promql(
          ratio('category', `increase(${OPTED_OUT}[$__range])`, `increase(${CONSENT}[$__range])`),
          '{{category}}',
        ).instant(),
      ),
    new timeseries.PanelBuilder()
      .title('Privacy choices per minute')
      .description('Consent decisions per minute, by category and answer (said yes or said no).')
      .unit(units.CountsPerMinute)
      .withTarget(
        promql(
          `sum by (category, granted) (rate(${CONSENT}[$__rate_interval])) * 60`,
          '{{category}}: granted={{granted}}',
        ),
      ),
  ]);
  return d.build();
}
