/**
 * The servers an A/B bench script compares, named on its command line (bench/steady-ab.ts,
 * bench/throughput-ab.ts):
 *
 * - `sink`: the bare sink (bench/sink.ts); `decode-sink` also decodes each body with the receiver's
 *   decoder, `redact-sink` decodes and runs the default redaction: the floors a receiver is measured
 *   against. Each takes `node` and `env` as a receiver does; an `env` value left empty removes the
 *   variable (`sink:env=MALLOC_TRIM_THRESHOLD_=;MALLOC_MMAP_THRESHOLD_=` is the sink with glibc's own
 *   malloc thresholds: bench/proc.ts, SINK_MALLOC_ENV);
 * - `name[:key=value]...`: a receiver, with keys `bin` (another build's bin/sonde-receiver.js), `node`
 *   (node flags, space-separated), `args` (the receiver's, space-separated: `--config FILE`) and `env`
 *   (NAME=VALUE;NAME=VALUE). `receiver` alone is the built receiver with its defaults.
 */
import { type Server, type SinkWork, startReceiver, startSink } from './proc.ts';

export interface Variant {
  name: string;
  start(dataDir: string): Promise<Server>;
}

const SINKS: Record<string, SinkWork> = { sink: '', 'decode-sink': 'decode', 'redact-sink': 'redact' };

export function parseVariant(spec: string): Variant {
  const [name, ...pairs] = spec.split(':');
  let bin: string | undefined;
  let nodeArgs: string[] = [];
  let args: string[] = [];
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (key === 'bin') bin = value;
    else if (key === 'args') args = value.split(' ').filter(Boolean);
    else if (key === 'node') nodeArgs = value.split(' ').filter(Boolean);
    else if (key === 'env')
      for (const kv of value.split(';').filter(Boolean))
        env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
    else throw new Error(`unknown key ${key} in variant ${spec}`);
  }
  if (Object.hasOwn(SINKS, name)) {
    if (bin !== undefined || args.length > 0) throw new Error(`${spec}: a sink takes only node and env`);
    return { name, start: () => startSink(SINKS[name], { nodeArgs, env }) };
  }
  return { name, start: (dataDir) => startReceiver({ dataDir, bin, nodeArgs, env, args }) };
}
