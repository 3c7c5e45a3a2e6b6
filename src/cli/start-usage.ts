/** `remediator start --help` and `npm start -- --help` print this one text (src/main.ts, src/cli/commands.ts). */
export const startUsage = `remediator start [--role all|receiver|worker]      (the same: npm start [-- --role ...])
    Runs the service: the receiver and the workers in one process (--role or REMEDIATOR_ROLE
    splits them). Configuration is environment variables (README: Configuration); try
    DRY_RUN=true first.`;
