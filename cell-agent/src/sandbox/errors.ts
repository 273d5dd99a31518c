/** Base class for every failure the sandbox reports. */
export class SandboxError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SandboxError";
  }
}

/** The process asked for a user that the container's /etc/passwd does not know. */
export class UnknownUserError extends SandboxError {
  constructor(readonly user: string) {
    super(`unable to find user ${user}: no matching entries in /etc/passwd`);
    this.name = "UnknownUserError";
  }
}

/** The OCI runtime binary cannot run containers on this host as configured. */
export class RuntimeUnavailableError extends SandboxError {
  constructor(message: string) {
    super(message);
    this.name = "RuntimeUnavailableError";
  }
}

/** An external command (mount, mkfs, runc ...) failed. */
export class CommandError extends SandboxError {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${exitCode ?? "signal"}): ${stderr.trim() || "no output"}`);
    this.name = "CommandError";
  }
}

/** A sandbox was used after destroy() or run twice where only once is allowed. */
export class SandboxStateError extends SandboxError {
  constructor(message: string) {
    super(message);
    this.name = "SandboxStateError";
  }
}

/** True when err is a Node system error with this code (ENOENT, EBUSY, ...). */
export function isCode(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}
