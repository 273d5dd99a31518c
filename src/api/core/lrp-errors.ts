import { DiegoError, echo } from "../../model/index.js";
import { ActualLRPNotFoundError, DesiredLRPExistsError, DesiredLRPNotFoundError, DesiredLRPTooLargeError, LrpContentionError } from "../../store/index.js";

// The LRP errors as the API names them (the 2015 receptor's names and messages, reference 2.1).

export const desiredLrpNotFound = (guid: string): DiegoError =>
  new DiegoError("DesiredLRPNotFound", `Desired LRP with guid '${echo(guid)}' not found`);

export const desiredLrpAlreadyExists = (guid: string): DiegoError =>
  new DiegoError("DesiredLRPAlreadyExists", `Desired LRP with guid '${echo(guid)}' already exists`);

export const actualLrpIndexNotFound = (guid: string, index: number): DiegoError =>
  new DiegoError("ActualLRPIndexNotFound", `process-guid '${echo(guid)}' does not exist or has no instance at index ${index}`);

export const invalidLrp = (problems: string[]): DiegoError => new DiegoError("InvalidLRP", problems.join(", "));

/** A store error as the API names it; anything else is passed on (a fault). */
export function fromLrpStoreError(err: unknown): unknown {
  if (err instanceof DesiredLRPNotFoundError) return desiredLrpNotFound(err.processGuid);
  if (err instanceof DesiredLRPExistsError) return desiredLrpAlreadyExists(err.processGuid);
  if (err instanceof ActualLRPNotFoundError) return actualLrpIndexNotFound(err.processGuid, err.index);
  if (err instanceof DesiredLRPTooLargeError) return new DiegoError("RequestTooLarge", err.message);
  if (err instanceof LrpContentionError) return new DiegoError("ResourceConflict", err.message);
  return err;
}
