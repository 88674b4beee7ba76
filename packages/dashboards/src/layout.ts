/**
 * Rows of panels, laid out left to right: the panels of a row share its 24 columns equally and have
 * the row's height (8 by default), and the datasource of their queries; the dashboard builder places
 * each row below the previous one.
 */
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';

interface Sized extends cog.Builder<dashboard.Panel> {
  span(w: number): unknown;
  height(h: number): unknown;
  datasource(ref: { type?: string; uid?: string }): unknown;
}

export function row(d: dashboard.DashboardBuilder, title: string, panels: Sized[], height = 8): void {
  d.withRow(new dashboard.RowBuilder(title));
  const width = Math.floor(24 / panels.length);
  for (const p of panels) {
    p.span(width);
    p.height(height);
    // The panel's datasource is its queries' (Grafana shows it in the editor and uses it for new queries).
    const built = p.build() as { datasource?: unknown; targets?: { datasource?: { type?: string; uid?: string } }[] };
    const ref = built.targets?.[0]?.datasource;
    if (!built.datasource && ref) p.datasource(ref);
    d.withPanel(p);
  }
}
