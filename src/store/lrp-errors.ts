// Errors of the LRP store; the API maps them to 2015's names (src/model/lrp-errors.ts).

export class DesiredLRPExistsError extends Error {
  override readonly name = "DesiredLRPExistsError";
  constructor(readonly processGuid: string) {
    super(`Desired LRP with guid '${processGuid}' already exists`);
  }
}

export class DesiredLRPNotFoundError extends Error {
  override readonly name = "DesiredLRPNotFoundError";
  constructor(readonly processGuid: string) {
    super(`Desired LRP with guid '${processGuid}' not found`);
  }
}

export class ActualLRPNotFoundError extends Error {
  override readonly name = "ActualLRPNotFoundError";
  constructor(
    readonly processGuid: string,
    readonly index: number,
  ) {
    super(`process-guid '${processGuid}' does not exist or has no instance at index ${index}`);
  }
}

export class ActualLRPExistsError extends Error {
  override readonly name = "ActualLRPExistsError";
  constructor(
    readonly processGuid: string,
    readonly index: number,
  ) {
    super(`actual LRP '${processGuid}' already has a record at index ${index}`);
  }
}

/** Too many concurrent writers kept winning the compare-and-swap; the caller may retry. */
export class LrpContentionError extends Error {
  override readonly name = "LrpContentionError";
  constructor(readonly key: string) {
    super(`LRP record '${key}' is being changed by too many writers at once`);
  }
}

/** A DesiredLRP whose record would not fit the NATS server's max_payload once updated. */
export class DesiredLRPTooLargeError extends Error {
  override readonly name = "DesiredLRPTooLargeError";
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`the desired LRP is ${size} bytes when stored, over the ${limit}-byte limit (the NATS server's max_payload less room for updates of its routes and annotation)`);
  }
}
