/** The outcome of the last rules reload of this process. */
export interface ReloadResult {
  ok: boolean;
  at: Date;
  /** What asked for it: "rules directory changed", "SIGHUP". */
  reason: string;
  /** Positioned errors (`file:line:col: rule "x": path: message`) of a refused reload. */
  problems: string[];
}

/**
 * The last reload's result, for /readyz and the status page: a refused reload keeps the previous
 * table running (still ready), but people must see that their edit is not in force.
 * service.ts records each reload here; nothing else writes it.
 */
export class ReloadStatus {
  private last: ReloadResult | undefined;

  succeeded(reason: string, at = new Date()): void {
    this.last = { ok: true, at, reason, problems: [] };
  }

  refused(reason: string, problems: string[], at = new Date()): void {
    this.last = { ok: false, at, reason, problems };
  }

  /** The last reload when it was refused (a later good reload clears it). */
  refusal(): ReloadResult | undefined {
    return this.last && !this.last.ok ? this.last : undefined;
  }
}
