/**
 * Shares one in-flight operation per key among concurrent callers. Each caller can give up with
 * its own signal; the shared work is aborted only when every caller has given up.
 */
export interface SingleFlight<T> {
  run(key: string, work: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T>;
}

interface Flight<T> {
  promise: Promise<T>;
  controller: AbortController;
  waiters: number;
}

export function createSingleFlight<T>(): SingleFlight<T> {
  const flights = new Map<string, Flight<T>>();

  function start(key: string, work: (signal: AbortSignal) => Promise<T>): Flight<T> {
    const controller = new AbortController();
    const flight: Flight<T> = { controller, waiters: 0, promise: Promise.resolve(undefined as T) };
    flight.promise = Promise.resolve()
      .then(() => work(controller.signal))
      .finally(() => {
        if (flights.get(key) === flight) flights.delete(key);
      });
    flights.set(key, flight);
    return flight;
  }

  return {
    run(key, work, signal) {
      if (signal?.aborted) return Promise.reject(signal.reason);
      let flight = flights.get(key);
      // A flight whose callers all left is winding down: start afresh rather than join it.
      if (!flight || flight.controller.signal.aborted) flight = start(key, work);
      return join(flight, signal);
    },
  };
}

function join<T>(flight: Flight<T>, signal?: AbortSignal): Promise<T> {
  flight.waiters++;
  return new Promise<T>((resolve, reject) => {
    let left = false;
    const leave = (abandon: boolean) => {
      if (left) return;
      left = true;
      flight.waiters--;
      signal?.removeEventListener("abort", onAbort);
      if (abandon && flight.waiters === 0) flight.controller.abort(signal?.reason);
    };
    const onAbort = () => {
      leave(true);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    flight.promise.then(
      (value) => {
        leave(false);
        resolve(value);
      },
      (err: unknown) => {
        leave(false);
        reject(err);
      },
    );
  });
}
