/** The 2015 crash reason when the container or its network could not be made. */
export const CONTAINER_INIT_FAILED = "failed to initialize container";

/** A spec the runner cannot run; the message names every problem. */
export class InvalidLrpInstanceError extends Error {
  override readonly name = "InvalidLrpInstanceError";
  constructor(readonly problems: string[]) {
    super(`invalid LRP instance: ${problems.join(", ")}`);
  }
}

/** The instance has container ports but the cell runs without container networking. */
export class NoNetworkForPortsError extends Error {
  override readonly name = "NoNetworkForPortsError";
  constructor() {
    super("container ports need the cell's container network");
  }
}
