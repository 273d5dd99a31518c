import type { Readable } from "node:stream";

// The contract between the executor (which runs actions) and the sandbox (which owns
// OCI containers). Written first so both sides can be built at once; change it only with care.

/** Resource limits for one container. 0 means "no limit" for every field. */
export interface SandboxLimits {
  /** Hard memory limit in MiB (task memory_mb). */
  memoryMb: number;
  /** Relative CPU weight 1..100 (task cpu_weight); 0 = default weight. */
  cpuWeight: number;
  /** Cap in MiB on everything the container writes on top of its root filesystem. */
  diskMb: number;
  /** Maximum number of processes/threads in the container. */
  pids: number;
}

export interface BindMount {
  source: string;
  destination: string;
  readonly: boolean;
}

export interface SandboxSpec {
  /** Unique on the cell; used for the runtime's container id, cgroup and directories. */
  id: string;
  /** Read-only root filesystem layers, lowest first (a preloaded rootfs is one layer). */
  layers: string[];
  /** Container-level environment, "NAME=value", in order (image env, then task env). */
  env: string[];
  /** Default working directory for processes (image WORKDIR), "/" when absent. */
  workdir?: string;
  /** false: user namespace, container root is an unprivileged host uid. */
  privileged: boolean;
  limits: SandboxLimits;
  /** Extra mounts (tests use this to bind a host file read-only). */
  bindMounts?: BindMount[];
  /** The container's network, made ready before its first process; absent = an empty namespace. */
  network?: SandboxNetwork;
}

/** What the cell's network offers a sandbox (see cell-agent/src/network). */
export interface SandboxNetwork {
  /** Some rule allows ICMP: a user-namespaced container's root should own the namespace (ping). */
  readonly allowsIcmp: boolean;
  /**
   * Makes the container's network namespace, wired and firewalled, for the runtime to join.
   * With `owner` (a user-namespaced container's mapping) the namespace belongs to a user
   * namespace with that mapping, which the runtime joins too, so the container's root has
   * CAP_NET_RAW there (ping) and `runc exec` can join the namespace. Once per container.
   */
  namespaceFiles(owner?: NamespaceOwner): Promise<NamespaceFiles>;
}

export interface NamespaceOwner {
  hostId: number;
  size: number;
}

export interface NamespaceFiles {
  netns: string;
  /** The user namespace owning netns, when an owner was given. */
  userns?: string;
}

export interface ProcessSpec {
  path: string;
  args: string[];
  /** Process-level env "NAME=value", appended after the container env. */
  env: string[];
  /** Working directory; defaults to the spec's workdir. */
  dir?: string;
  /** User name or numeric uid inside the container; "" or undefined means root. */
  user?: string;
  /** RLIMIT_NOFILE for this process, 0/undefined = runtime default. */
  nofile?: number;
}

export interface ProcessIO {
  /** Called with raw chunks as the process writes them. */
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
  /**
   * ADDED (escapes): piped to the process's stdin (run() only; none otherwise), so the cell can
   * stream data into a container without writing under its rootfs. Destroyed when the process exits.
   */
  stdin?: Readable;
  /**
   * ADDED (start queue): called once the runtime has started the process (it wrote the pid),
   * not called when it never started.
   */
  onStart?(): void;
}

export interface RunOnceOptions {
  /**
   * ADDED (lrp): the process runs as the only child of a minimal PID 1 (the hidden busybox sh,
   * which waits for it and exits with its status), not as PID 1 itself: the kernel drops
   * signals to a PID 1 that installed no handler, so a plain process could not be stopped
   * gracefully. Its path must be absolute: the shell would run its own applet for a bare name.
   */
  asChild?: boolean;
}

export interface ProcessResult {
  exitCode: number;
  /** True when the container's memory limit was hit and the kernel killed a process. */
  oomKilled: boolean;
}

export interface Sandbox {
  readonly id: string;
  /** Host path of the container's merged root filesystem (read result files, copy downloads in). */
  readonly rootfsPath: string;
  /** Uid/gid on the host that container root maps to (0 when privileged). */
  readonly hostRootUid: number;
  /** Runs one process inside the container; resolves when it exits. Aborting the signal kills it. */
  run(proc: ProcessSpec, io: ProcessIO, signal?: AbortSignal): Promise<ProcessResult>;
  /**
   * ADDED (sandbox): fast path for a task that is exactly one process. The process becomes the
   * container's init, started with a single runtime invocation. Callable only instead of run()
   * (once, before any run()); throws SandboxStateError otherwise. Same results as run().
   */
  runOnce?(proc: ProcessSpec, io: ProcessIO, signal?: AbortSignal, opts?: RunOnceOptions): Promise<ProcessResult>;
  /**
   * ADDED (lrp): sends sig to every process of the container but its idle init and those in
   * `except`, so a long-running process can stop gracefully before destroy() kills what is left.
   * Resolves with the host pids signalled.
   */
  signal?(sig: NodeJS.Signals, except?: ReadonlySet<number>): Promise<number[]>;
  /**
   * Kills every process, removes the container, its cgroup, overlay and disk. Idempotent.
   * `onStopped` (first call only) runs once the processes are dead and the runtime has deleted
   * the container, before the slower filesystem and cgroup removal.
   */
  destroy(opts?: DestroyOptions): Promise<void>;
}

export interface DestroyOptions {
  onStopped?: () => void;
}

export interface SandboxRuntime {
  readonly name: "runc" | "crun";
  create(spec: SandboxSpec): Promise<Sandbox>;
  /** Removes containers left behind by a previous run of this cell (after a crash). */
  cleanupStale(): Promise<void>;
}
