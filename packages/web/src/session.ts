/**
 * Anonymous sessions: a random id, kept in `sessionStorage` (this tab only, gone when it closes) once
 * `product` is granted, and in memory only before; a new one after `inactivityMs` without activity.
 * `session.start` and `session.end` (with `session.duration_ms`) are product events: the end of an
 * expired session is emitted when the expiry is seen (a timer while the page is open, or the next
 * page of the tab), so a tab closed for good has no end event.
 */
export interface SessionData {
  id: string;
  /** ms since epoch */
  start: number;
  last: number;
}

const KEY = 'sonde.session';

/** Emits a session event; returns whether it was sent (false while `product` is not granted). */
export type SessionEvents = (
  name: 'session.start' | 'session.end',
  attributes: Record<string, string | number>,
) => boolean;

function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return hex;
}

export class Sessions {
  private data: SessionData;
  private timer: ReturnType<typeof setInterval> | undefined;
  private ended = false;
  /** Whether this session's start event was sent (it is sent once `product` is granted, if not at start). */
  private announced = false;

  constructor(
    private readonly inactivityMs: number,
    private persist: boolean,
    private readonly emit: SessionEvents,
    private readonly now: () => number = Date.now,
  ) {
    const stored = this.load();
    const t = this.now();
    if (stored && t - stored.last <= inactivityMs) {
      // Kept only while product was granted: its start was sent by the page that began it.
      this.data = stored;
      this.announced = true;
    } else {
      if (stored) this.end(stored);
      this.data = { id: newId(), start: t, last: t };
      this.announced = this.emit('session.start', { 'session.id': this.data.id });
    }
    this.save();
    this.timer = setInterval(() => this.check(), Math.min(60_000, Math.max(1000, inactivityMs / 4)));
  }

  get id(): string {
    return this.data.id;
  }

  private load(): SessionData | undefined {
    try {
      const raw = sessionStorage.getItem(KEY);
      const d = raw ? (JSON.parse(raw) as SessionData) : undefined;
      return d && typeof d.id === 'string' && typeof d.start === 'number' && typeof d.last === 'number' ? d : undefined;
    } catch {
      return undefined;
    }
  }

  private save(): void {
    try {
      if (this.persist) sessionStorage.setItem(KEY, JSON.stringify(this.data));
      else sessionStorage.removeItem(KEY);
    } catch {
      // storage refused (private mode, quota): the session lives in memory.
    }
  }

  /** `product` granted or withdrawn: keep the id in sessionStorage or remove it; a new session's start is sent once granted. */
  setPersist(on: boolean): void {
    this.persist = on;
    if (on && !this.announced) this.announced = this.emit('session.start', { 'session.id': this.data.id });
    this.save();
  }

  private end(d: SessionData): void {
    this.emit('session.end', { 'session.id': d.id, 'session.duration_ms': Math.max(0, d.last - d.start) });
  }

  /** Ends the session if it expired (a new one starts at the next activity). */
  check(): void {
    if (!this.ended && this.now() - this.data.last > this.inactivityMs) {
      this.end(this.data);
      this.ended = true;
    }
  }

  /** Activity (an interaction, an event): rotates an expired session, then extends this one. */
  touch(): void {
    this.check();
    const t = this.now();
    if (this.ended) {
      this.ended = false;
      this.data = { id: newId(), start: t, last: t };
      this.announced = this.emit('session.start', { 'session.id': this.data.id });
    }
    this.data.last = t;
    this.save();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
