/**
 * Files that are re-read when they change: the listeners' certificates and the bearer token files.
 * Polled (every `intervalMs`, contents compared), not watched with inotify: polling also sees the
 * symlink swaps with which Kubernetes updates a mounted Secret, a file replaced by a rename, and a
 * file on a network volume. The files are small (PEM, a token per line), so reading them each
 * second costs nothing measurable.
 *
 * A change is applied only if `apply` accepts the new contents; otherwise the previous ones stay in
 * force (a key written before its certificate, a half-written file) and the failure is logged once
 * per distinct content. The log never holds the contents.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../logger';

export class WatchedFiles {
  private applied: string;
  private lastFailed = '';
  private readonly timer: NodeJS.Timeout | undefined;
  private polling = false;

  /**
   * Reads the files now (throwing, with the message of `apply` or the file that cannot be read, when
   * they are not usable) and then every `intervalMs` (0: never again).
   */
  constructor(
    private readonly files: string[],
    intervalMs: number,
    private readonly apply: (contents: Buffer[]) => void,
    private readonly logger: Logger,
    /** What the files are, for the log ("otlp.tls", "admin.auth.bearer_tokens_file"). */
    private readonly what: string,
  ) {
    const contents = files.map((file) => {
      try {
        return readFileSync(file);
      } catch (err) {
        throw new Error(`${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    });
    apply(contents);
    this.applied = digest(contents);
    if (intervalMs > 0) this.timer = setInterval(() => void this.poll(), intervalMs).unref();
  }

  /** Reads the files again and applies them if they changed (the timer calls it; tests may too). */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      let contents: Buffer[];
      try {
        contents = await Promise.all(this.files.map((f) => readFile(f)));
      } catch (err) {
        const key = `read:${(err as NodeJS.ErrnoException).code}`;
        if (key !== this.lastFailed) {
          this.lastFailed = key;
          this.logger.warn(
            { what: this.what, code: (err as NodeJS.ErrnoException).code },
            `${this.what}: cannot read the files again; the previous ones stay in force`,
          );
        }
        return;
      }
      const d = digest(contents);
      if (d === this.applied || d === this.lastFailed) return;
      try {
        this.apply(contents);
      } catch (err) {
        this.lastFailed = d;
        this.logger.warn(
          { what: this.what, error: (err as Error).message },
          `${this.what}: the changed files are not usable; the previous ones stay in force`,
        );
        return;
      }
      this.applied = d;
      this.lastFailed = '';
      this.logger.info({ what: this.what }, `${this.what}: reloaded`);
    } finally {
      this.polling = false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

function digest(contents: Buffer[]): string {
  const h = createHash('sha256');
  for (const c of contents) h.update(createHash('sha256').update(c).digest());
  return h.digest('hex');
}
