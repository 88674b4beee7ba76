/** The demo catalogue and the consent header, shared by the storefront and the load generator. */
import type { ConsentMap } from '@sonde/node';

export const CATALOG = [
  { sku: 'tea-green', name: 'Green tea', priceCents: 450 },
  { sku: 'tea-black', name: 'Black tea', priceCents: 400 },
  { sku: 'coffee-beans', name: 'Coffee beans', priceCents: 1290 },
  { sku: 'mug', name: 'Mug', priceCents: 900 },
  { sku: 'kettle', name: 'Kettle', priceCents: 3900 },
  { sku: 'teapot', name: 'Teapot', priceCents: 2500 },
  { sku: 'filter', name: 'Paper filters', priceCents: 300 },
  { sku: 'grinder', name: 'Grinder', priceCents: 5900 },
];

/** `product=0,diagnostics=1` → `{ product: false, diagnostics: true }`; undefined without a header. */
export function parseConsentHeader(value: string | undefined): ConsentMap | undefined {
  if (!value) return undefined;
  const out: ConsentMap = {};
  for (const part of value.split(',')) {
    const [k, v] = part.split('=').map((s) => s.trim());
    if (k === 'diagnostics' || k === 'performance' || k === 'product') out[k] = v !== '0' && v !== 'false';
  }
  return out;
}
