/**
 * The transport: every export (OTLP/JSON bytes of one signal) goes through here. It is sent at once
 * (gzip-compressed with CompressionStream) when the network allows, or kept in a bounded IndexedDB
 * queue while the policy says to wait (metered: `saveData`, a cellular connection; offline), and sent
 * later, several exports of a signal merged into one request. On `pagehide` the page may be gone
 * before a compression finishes: from then on exports go out synchronously with `fetch({ keepalive })`
 * (or `sendBeacon` when keepalive refuses the body), uncompressed.
 */

export type Signal = 'traces' | 'logs' | 'metrics';
export type DeferPolicy = 'metered' | 'offline' | 'never';

export interface TransportOptions {
  /** Base OTLP/HTTP URL; `/v1/<signal>` is appended. */
  endpoint: string;
  headers: Record<string, string>;
  defer: DeferPolicy;
  /** Most exports kept in the queue; the oldest are dropped beyond (counted in stats.dropped). */
  maxQueueItems: number;
  /** Most bytes (uncompressed JSON) kept in the queue; the oldest are dropped beyond. */
  maxQueueBytes: number;
  /** Most bytes (uncompressed) merged into one request when the queue is sent. */
  maxBatchBytes: number;
  /** How often the network state is looked at again while exports wait, ms. */
  pollMs: number;
  compress: boolean;
  /** IndexedDB database name. */
  dbName: string;
}

export interface TransportStats {
  /** Requests sent that the receiver accepted. */
  sent: number;
  /** Exports now waiting in the queue. */
  queued: number;
  /** Exports dropped from the queue because it was full (oldest first). */
  dropped: number;
  /** Exports the receiver refused (4xx other than 429): not retried. */
  rejected: number;
  /** Exports sent with keepalive/sendBeacon while the page was being hidden. */
  beacons: number;
  /** Why exports are waiting now ('' when they are not). */
  deferredBy: string;
}

interface Connection extends EventTarget {
  saveData?: boolean;
  type?: string;
  effectiveType?: string;
}

interface QueueItem {
  id?: number;
  signal: Signal;
  body: string;
}

const STORE = 'exports';
/** Most characters the pagehide stash in localStorage takes (its quota is some 5 MB per origin, shared with the app). */
const STASH_MAX_CHARS = 512 * 1024;

function openDb(name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore(STORE, { keyPath: 'id', autoIncrement: true });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** The OTLP JSON key holding the resource-level array of each signal. */
const TOP: Record<Signal, string> = { traces: 'resourceSpans', logs: 'resourceLogs', metrics: 'resourceMetrics' };

/** Several OTLP/JSON export requests of one signal merged into one. */
export function mergeBodies(signal: Signal, bodies: string[]): string {
  if (bodies.length === 1) return bodies[0];
  const key = TOP[signal];
  const all: unknown[] = [];
  for (const b of bodies) {
    const parsed = JSON.parse(b) as Record<string, unknown[] | undefined>;
    all.push(...(parsed[key] ?? []));
  }
  return JSON.stringify({ [key]: all });
}

async function gzip(text: string): Promise<ArrayBuffer> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Response(stream).arrayBuffer();
}

export class Transport {
  readonly stats: TransportStats = { sent: 0, queued: 0, dropped: 0, rejected: 0, beacons: 0, deferredBy: '' };
  private db: Promise<IDBDatabase | undefined> | undefined;
  private unloading = false;
  private draining: Promise<void> | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private queueBytes = 0;
  private readonly cleanup: (() => void)[] = [];

  constructor(private readonly options: TransportOptions) {
    const wake = () => void this.drain();
    addEventListener('online', wake);
    this.cleanup.push(() => removeEventListener('online', wake));
    const connection = this.connection();
    if (connection) {
      connection.addEventListener('change', wake);
      this.cleanup.push(() => connection.removeEventListener('change', wake));
    }
    this.timer = setInterval(wake, options.pollMs);
    // The database is opened now, so that a page being hidden needs one transaction only to keep
    // its last exports; what an earlier page left (deferred, or failed) goes out as soon as allowed.
    void this.database()
      .then(() => this.unstash())
      .then(wake);
  }

  private connection(): Connection | undefined {
    return (navigator as Navigator & { connection?: Connection }).connection;
  }

  /** Why exports must wait now, or '' when they may be sent. */
  deferReason(): string {
    const policy = this.options.defer;
    if (policy === 'never') return '';
    if (!navigator.onLine) return 'offline';
    if (policy === 'offline') return '';
    const c = this.connection();
    if (c?.saveData) return 'save_data';
    if (c?.type === 'cellular') return 'cellular';
    return '';
  }

  /** The page is being hidden (pagehide): send synchronously from now on. */
  setUnloading(on: boolean): void {
    this.unloading = on;
  }

  /** Sends or queues one export. Resolves once it is sent, queued, or refused. */
  async send(signal: Signal, body: string): Promise<boolean> {
    const reason = this.deferReason();
    this.stats.deferredBy = reason;
    if (reason) {
      // A page being hidden may be gone before an IndexedDB transaction commits: localStorage is synchronous.
      if (this.unloading && this.stash({ signal, body })) return true;
      await this.enqueue([{ signal, body }]);
      return true;
    }
    if (this.unloading) return this.beacon(signal, body);
    const ok = await this.post(signal, body);
    if (ok === 'retry') await this.enqueue([{ signal, body }]);
    // Something sent: whatever waits may go too.
    else if (this.stats.queued > 0) void this.drain();
    return ok === true;
  }

  private url(signal: Signal): string {
    return `${this.options.endpoint.replace(/\/+$/, '')}/v1/${signal}`;
  }

  /** true: accepted; false: refused for good (dropped, counted); 'retry': network error, 429 or 5xx. */
  private async post(signal: Signal, body: string): Promise<boolean | 'retry'> {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...this.options.headers };
    let payload: BodyInit = body;
    if (this.options.compress && typeof CompressionStream === 'function') {
      try {
        payload = await gzip(body);
        headers['content-encoding'] = 'gzip';
      } catch {
        payload = body;
      }
    }
    try {
      const res = await fetch(this.url(signal), { method: 'POST', headers, body: payload, credentials: 'omit' });
      if (res.ok) {
        this.stats.sent++;
        return true;
      }
      if (res.status === 429 || res.status >= 500) return 'retry';
      this.stats.rejected++;
      return false;
    } catch {
      return 'retry';
    }
  }

  /** Synchronous send for a page being hidden. */
  private beacon(signal: Signal, body: string): boolean {
    this.stats.beacons++;
    try {
      void fetch(this.url(signal), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.options.headers },
        body,
        keepalive: true,
        credentials: 'omit',
      }).catch(() => {});
      return true;
    } catch {
      // keepalive refuses bodies above its 64 KiB budget: sendBeacon (no custom headers) may take it.
      return navigator.sendBeacon(this.url(signal), new Blob([body], { type: 'application/json' }));
    }
  }

  private stashKey(): string {
    return `${this.options.dbName}:stash`;
  }

  /** Keeps an export synchronously in localStorage (moved to the queue by the next page); false if refused. */
  private stash(item: QueueItem): boolean {
    try {
      const key = this.stashKey();
      const items = JSON.parse(localStorage.getItem(key) ?? '[]') as QueueItem[];
      items.push({ signal: item.signal, body: item.body });
      const text = JSON.stringify(items);
      if (text.length > STASH_MAX_CHARS) return false;
      localStorage.setItem(key, text);
      return true;
    } catch {
      return false;
    }
  }

  /** Moves what a page being hidden stashed in localStorage into the queue. */
  private async unstash(): Promise<void> {
    let items: QueueItem[];
    try {
      const key = this.stashKey();
      items = JSON.parse(localStorage.getItem(key) ?? '[]') as QueueItem[];
      localStorage.removeItem(key);
    } catch {
      return;
    }
    const valid = items.filter(
      (i) =>
        i && typeof i.body === 'string' && (i.signal === 'traces' || i.signal === 'logs' || i.signal === 'metrics'),
    );
    if (valid.length > 0) await this.enqueue(valid);
  }

  private database(): Promise<IDBDatabase | undefined> {
    this.db ??= openDb(this.options.dbName).then(
      async (db) => {
        const tx = db.transaction(STORE, 'readonly');
        const items = (await request(tx.objectStore(STORE).getAll())) as QueueItem[];
        this.stats.queued = items.length;
        this.queueBytes = items.reduce((n, i) => n + i.body.length, 0);
        return db;
      },
      () => undefined,
    );
    return this.db;
  }

  private async enqueue(items: QueueItem[]): Promise<void> {
    const db = await this.database();
    if (!db) {
      // No IndexedDB (private mode of some browsers): nothing can wait, the export is lost.
      this.stats.dropped += items.length;
      return;
    }
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    for (const item of items) {
      store.add({ signal: item.signal, body: item.body });
      this.stats.queued++;
      this.queueBytes += item.body.length;
    }
    // Bounded: drop the oldest while over either limit.
    if (this.stats.queued > this.options.maxQueueItems || this.queueBytes > this.options.maxQueueBytes) {
      const cursorReq = store.openCursor();
      cursorReq.onsuccess = () => {
        const cursor = cursorReq.result;
        if (!cursor) return;
        if (this.stats.queued <= this.options.maxQueueItems && this.queueBytes <= this.options.maxQueueBytes) return;
        const item = cursor.value as QueueItem;
        cursor.delete();
        this.stats.queued--;
        this.stats.dropped++;
        this.queueBytes -= item.body.length;
        cursor.continue();
      };
    }
    await done(tx);
  }

  /** Sends what waits in the queue, merged by signal, when the network allows. */
  drain(): Promise<void> {
    if (this.draining) return this.draining;
    // One tab of the origin at a time sends the shared queue (Web Locks), else two tabs could send the same exports.
    const locks = (navigator as Navigator & { locks?: LockManager }).locks;
    const run = locks
      ? locks.request(`sonde-web-drain:${this.options.dbName}`, { ifAvailable: true }, (lock) =>
          lock ? this.drainInner() : undefined,
        )
      : this.drainInner();
    this.draining = Promise.resolve(run).finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  private async drainInner(): Promise<void> {
    const reason = this.deferReason();
    this.stats.deferredBy = reason;
    if (reason) return;
    const db = await this.database();
    if (!db || this.stats.queued === 0) return;
    for (;;) {
      const items = (await request(db.transaction(STORE, 'readonly').objectStore(STORE).getAll())) as QueueItem[];
      if (items.length === 0) return;
      // One batch: the oldest export's signal, with the following ones of that signal up to maxBatchBytes.
      const signal = items[0].signal;
      const batch: QueueItem[] = [];
      let bytes = 0;
      for (const item of items) {
        if (item.signal !== signal) continue;
        if (batch.length > 0 && bytes + item.body.length > this.options.maxBatchBytes) break;
        batch.push(item);
        bytes += item.body.length;
      }
      const ok = this.unloading
        ? this.beacon(
            signal,
            mergeBodies(
              signal,
              batch.map((i) => i.body),
            ),
          )
        : await this.post(
            signal,
            mergeBodies(
              signal,
              batch.map((i) => i.body),
            ),
          );
      if (ok === 'retry') return;
      const tx = db.transaction(STORE, 'readwrite');
      for (const item of batch) {
        tx.objectStore(STORE).delete(item.id as number);
        this.stats.queued--;
        this.queueBytes -= item.body.length;
      }
      await done(tx);
      if (this.deferReason()) return;
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const c of this.cleanup.splice(0)) c();
    await this.draining;
    (await this.db)?.close();
  }
}
