export class RouterListenError extends Error {
  override readonly name = "RouterListenError";
}

/** The instance accepted no connection within the connect timeout. */
export class ConnectTimeoutError extends Error {
  override readonly name = "ConnectTimeoutError";
  readonly code = "ETIMEDOUT";
}

/** A forked router process (`--router-processes`) did not start. */
export class RouterProcessError extends Error {
  override readonly name = "RouterProcessError";
}
