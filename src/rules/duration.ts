/** Durations live in the core (src/core/duration.ts); rules and the config parse them from there. */
export { formatDuration, parseDuration } from '../core/duration.js';
