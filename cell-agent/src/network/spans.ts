import type { Logger } from "pino";

// Wall time of each step of a container's network, logged at debug: the network is on every
// task's clock, and what the kernel makes a step wait for is invisible in CPU profiles.

export type Span = <T>(step: string, fn: () => T) => T;

/** A timer for the steps of one container's network; each step is logged with its ms. */
export function spans(logger: Logger, id: string): Span {
  if (!logger.isLevelEnabled("debug")) return (_step, fn) => fn();
  return (step, fn) => {
    const start = process.hrtime.bigint();
    const done = (): void => logger.debug({ id, step, ms: Number(process.hrtime.bigint() - start) / 1e6 }, "network step");
    const result = fn();
    if (result instanceof Promise) return result.finally(done) as typeof result;
    done();
    return result;
  };
}
