/** Parsing of the human units used in the configuration: sizes ("64MiB") and durations ("10s"). */

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** Bytes from a number or a string such as "512", "64MiB", "1.5GB". Returns an error text when invalid. */
export function parseSize(value: number | string): number | string {
  if (typeof value === 'number')
    return Number.isFinite(value) && value >= 0 ? Math.floor(value) : 'must be a non-negative number of bytes';
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined)
    return `"${value}" is not a size; write bytes as a number or with a unit: B, KB, MB, GB, KiB, MiB, GiB`;
  return Math.floor(Number(m[1]) * unit);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds from a number (milliseconds) or a string such as "500ms", "10s", "5m". */
export function parseDuration(value: number | string): number | string {
  if (typeof value === 'number')
    return Number.isFinite(value) && value >= 0 ? value : 'must be a non-negative number of milliseconds';
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(value);
  if (!m) return `"${value}" is not a duration; write it as a number with a unit: ms, s, m or h (e.g. "10s")`;
  return Number(m[1]) * DURATION_UNITS[m[2]];
}

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * A listen address: "host:port", "[v6]:port", ":port" (all interfaces) or "off".
 * Port 0 asks for any free port.
 */
export function parseAddress(value: string): ListenAddress | 'off' | string {
  const text = value.trim();
  if (text === 'off') return 'off';
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  if (!m) return `"${value}" is not an address; write host:port (e.g. 0.0.0.0:4318, [::1]:4318, :4318) or "off"`;
  const port = Number(m[3]);
  if (port > 65535) return `port ${port} is out of range (0-65535)`;
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
