import type { Logger } from './log.js';

/**
 * The order in which the parts of a process stop: first nothing new comes in (the HTTP server, the
 * reconciler), then the intake stops taking deliveries, then the workers finish what they run
 * (within SHUTDOWN_GRACE), then queues, connections and the database pool close.
 */
export const PHASES = ['edge', 'intake', 'work', 'queues', 'connections', 'stores'] as const;
export type Phase = (typeof PHASES)[number];

/** One part of the service that runs until it is stopped. */
export interface Component {
  name: string;
  phase: Phase;
  stop(): Promise<void>;
}

/** The running parts of a process, stopped phase by phase. */
export class Components {
  private readonly list: Component[] = [];

  add(name: string, phase: Phase, stop: () => Promise<unknown>): void {
    this.list.push({ name, phase, stop: async () => void (await stop()) });
  }

  /**
   * Stops every part, phase by phase (parts of one phase together). `beforeWork` runs as the work
   * phase starts (the shutdown grace timer). A part that fails to stop is logged; the rest still stop.
   */
  async stop(o: { log: Logger; beforeWork?: () => void; afterWork?: () => void }): Promise<void> {
    for (const phase of PHASES) {
      const parts = this.list.filter((c) => c.phase === phase);
      if (phase === 'work') o.beforeWork?.();
      await Promise.all(parts.map((c) => c.stop().catch((err: Error) => o.log.warn('a part did not stop cleanly', { part: c.name, error: err.message }))));
      if (phase === 'work') o.afterWork?.();
    }
  }
}
