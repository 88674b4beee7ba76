/**
 * Summary of a V8 .cpuprofile (as written by `node --cpu-prof`): the functions with the most self
 * time, and the time spent in each phase of the receiver's request path (inclusive).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
  /** Samples by source line (1-based, of the script the line is in; inlined callees count here too). */
  positionTicks?: { line: number; ticks: number }[];
}

/** A V8 .cpuprofile, as `node --cpu-prof` writes it. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTimeRow {
  function: string;
  where: string;
  selfMs: number;
  /** Share of the non-idle time. */
  share: number;
}

export interface PhaseRow {
  phase: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  file: string;
  /** Sampled time that was not idle, ms. */
  busyMs: number;
  idleMs: number;
  top: SelfTimeRow[];
  phases: PhaseRow[];
}

/**
 * A short, stable name for where a function lives: a dependency by its path in node_modules, a
 * workspace package's code as `<package>:<file>` (receiver:otlp/protobuf/reader.js, redact:redactor.js),
 * never the machine's own paths.
 */
function where(url: string, line: number): string {
  if (!url) return '(native/VM)';
  let u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) u = u.slice(nm + 'node_modules/'.length);
  else {
    const pkg = u.match(/\/packages\/([\w-]+)\/(?:dist\/)?(.*)$/);
    if (pkg) u = `${pkg[1]}:${pkg[2]}`;
  }
  return `${u}:${line + 1}`;
}

/**
 * The phases of the request path. Each sample goes to one phase: that of the innermost frame of its
 * stack that matches one (so that the decoder's time, called from inside body-parser's callback and
 * Node's HTTP stack, counts as decoding, not as body reading). Node's own frames (node:...) and native
 * leaves such as latin1Slice count for the receiver or dependency code that called them; only a
 * stack with no such frame at all counts as Node.js itself.
 */
const PHASES: { phase: string; match: (f: CallFrame) => boolean }[] = [
  {
    phase: 'protobuf decode (otlp/protobuf: decodeTraceRequest, ProtoReader)',
    match: (f) => f.url.includes('/dist/otlp/protobuf/'),
  },
  { phase: 'validation (intake/validate)', match: (f) => f.url.endsWith('/dist/intake/validate.js') },
  { phase: 'attribute-limits processor', match: (f) => f.url.endsWith('/dist/pipeline/attribute-limits.js') },
  { phase: 'recent-telemetry consumer', match: (f) => f.url.endsWith('/dist/pipeline/recent.js') },
  { phase: 'self-metrics (prom-client)', match: (f) => f.url.includes('/node_modules/prom-client/') },
  { phase: 'response encoding (otlp/responses)', match: (f) => f.url.endsWith('/dist/otlp/responses.js') },
  { phase: 'rest of the receiver (intake, handler, pipeline)', match: (f) => f.url.includes('/receiver/dist/') },
  {
    phase: 'body reading (body-parser, raw-body)',
    match: (f) => /\/node_modules\/(body-parser|raw-body|iconv-lite|type-is|bytes|http-errors)\//.test(f.url),
  },
  {
    phase: 'express and its helpers (routing, response)',
    match: (f) =>
      /\/node_modules\/[^/]+\//.test(f.url) &&
      /\/node_modules\/(express|router|finalhandler|send|on-finished|content-type|content-disposition|mime-types|mime-db|accepts|negotiator|statuses|depd|parseurl|encodeurl|vary|cors|etag|fresh|range-parser|qs|path-to-regexp|cookie|proxy-addr|forwarded|ipaddr\.js|merge-descriptors|debug|ms|escape-html|safe-buffer|setprototypeof|inherits|toidentifier|unpipe|ee-first|utils-merge)\//.test(
        f.url,
      ),
  },
  { phase: 'other dependencies', match: (f) => f.url.includes('/node_modules/') },
];
const NODE_PHASE = 'Node.js itself (HTTP parsing, sockets, streams) with no receiver or dependency frame above it';

export function summariseProfile(file: string, topN = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  // Self time: each sample's duration (the next time delta) goes to the sampled node.
  const selfUs = new Map<number, number>();
  // One slot per phase, then: Node.js itself, garbage collector, other VM work ((program), native with no JS caller).
  const NODE = PHASES.length;
  const GC = PHASES.length + 1;
  const VM = PHASES.length + 2;
  const phaseUs = new Array<number>(PHASES.length + 3).fill(0);
  let idleUs = 0;
  let busyUs = 0;
  const phaseCache = new Map<number, number>();
  /** The phase of the innermost matching frame, walking up from the sampled node (bounded by the stack depth). */
  const phaseOf = (id: number): number => {
    const cached = phaseCache.get(id);
    if (cached !== undefined) return cached;
    const leaf = (byId.get(id) as ProfileNode).callFrame.functionName;
    let phase = leaf === '(garbage collector)' ? GC : -1;
    let sawNode = false;
    for (
      let at: number | undefined = id, depth = 0;
      phase < 0 && at !== undefined && depth < 10_000;
      at = parent.get(at), depth++
    ) {
      const frame = (byId.get(at) as ProfileNode).callFrame;
      if (frame.url.startsWith('node:')) sawNode = true;
      else phase = PHASES.findIndex((p) => p.match(frame));
    }
    if (phase < 0) phase = sawNode ? NODE : VM;
    phaseCache.set(id, phase);
    return phase;
  };
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(id);
    if (!node) continue;
    if (node.callFrame.functionName === '(idle)') {
      idleUs += dt;
      continue;
    }
    busyUs += dt;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    phaseUs[phaseOf(id)] += dt;
  }
  // Aggregate self time by function (several nodes share one function when called from different stacks).
  const byFunction = new Map<string, { fn: string; where: string; us: number }>();
  for (const [id, us] of selfUs) {
    const f = (byId.get(id) as ProfileNode).callFrame;
    const fn = f.functionName || '(anonymous)';
    const loc = where(f.url, f.lineNumber);
    const key = `${fn}@${loc}`;
    const entry = byFunction.get(key) ?? { fn, where: loc, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
  }
  const top = [...byFunction.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, topN)
    .map((e) => ({ function: e.fn, where: e.where, selfMs: e.us / 1000, share: busyUs > 0 ? e.us / busyUs : 0 }));
  const names = [
    ...PHASES.map((p) => p.phase),
    NODE_PHASE,
    'garbage collector',
    'other VM work (program, compiler, no JS caller)',
  ];
  const phases = names.map((phase, i) => ({
    phase,
    ms: phaseUs[i] / 1000,
    share: busyUs > 0 ? phaseUs[i] / busyUs : 0,
  }));
  return { file, busyMs: busyUs / 1000, idleMs: idleUs / 1000, top, phases };
}

/**
 * Runs `f` under this thread's CPU profiler when SONDE_BENCH_PROFILE names a file, written there in
 * Chrome DevTools' format (the in-process bench tools: a profile of their timed part only).
 */
export function profiledIf<T>(f: () => T): T {
  const file = process.env.SONDE_BENCH_PROFILE;
  if (!file) return f();
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  try {
    return f();
  } finally {
    session.post('Profiler.stop', (err, r) => {
      if (!err) writeFileSync(file, JSON.stringify(r.profile));
      session.disconnect();
    });
  }
}
