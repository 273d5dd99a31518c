/** A network setting that cannot work on this machine (a pool that clashes, a bad range). */
export class NetworkConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NetworkConfigError";
  }
}

/** The cell's pool of addresses or host ports is used up. */
export class NetworkExhaustedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NetworkExhaustedError";
  }
}
