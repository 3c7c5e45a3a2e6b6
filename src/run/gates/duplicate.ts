import { isFinal } from '../../core/run.js';
import type { Gate } from './types.js';

/**
 * A job whose run already has an outcome, taken again on its first try: BullMQ freed the id after
 * its retention, or the worker died between recording the outcome and completing the job. Never
 * run it twice, and keep the recorded outcome. (Repeats of a firing under another job id are
 * recognised earlier, when the delivery is taken in: src/store/journal-store.ts.)
 */
export const duplicate: Gate = {
  name: 'duplicate',
  async check(c) {
    if (c.firstTry && isFinal(c.run.state) && c.run.attempts > 0) return { done: `This firing was already handled (${c.run.state}); not run again.` };
    return undefined;
  },
};
