import { SECCOMP_PROFILE } from "./seccomp-profile.js";

// The OCI runtime-spec subset we generate. Written by hand (no `runc spec`) so the
// defaults are ours: Docker's capability set, masked and read-only /proc paths,
// a deny-by-default device cgroup, a seccomp allow-list, and RLIMIT_NOFILE 1024:4096.

export const HIDDEN_DIR = "/.diego";
export const HIDDEN_BUSYBOX = `${HIDDEN_DIR}/busybox`;
export const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Docker's default capability set: enough for package managers and servers, nothing that reaches the host. */
export const DEFAULT_CAPABILITIES = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
  "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
];

const MASKED_PATHS = [
  "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
  "/sys/firmware", "/sys/devices/virtual/powercap",
];
const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** RLIMIT_NOFILE of a process whose run action gives no nofile (as Docker's default ulimit). */
export const DEFAULT_NOFILE = { soft: 1024, hard: 4096 };

export interface OciUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
}

export interface OciRlimit {
  type: string;
  soft: number;
  hard: number;
}

export interface OciProcess {
  terminal: false;
  user: OciUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities: Record<"bounding" | "effective" | "permitted" | "inheritable" | "ambient", string[]>;
  rlimits?: OciRlimit[];
  noNewPrivileges: true;
}

export interface ProcessInput {
  args: string[];
  env: string[];
  cwd: string;
  user: OciUser;
  nofile?: number;
}

export function buildProcess(input: ProcessInput): OciProcess {
  // Like Docker: a non-root user keeps the bounding set but starts with no effective capabilities.
  const active = input.user.uid === 0 ? DEFAULT_CAPABILITIES : [];
  const proc: OciProcess = {
    terminal: false,
    user: input.user,
    args: input.args,
    env: input.env,
    cwd: input.cwd,
    capabilities: {
      bounding: DEFAULT_CAPABILITIES,
      effective: active,
      permitted: active,
      inheritable: [],
      ambient: [],
    },
    noNewPrivileges: true,
  };
  // Set, never inherited from the cell (whose limit is far higher).
  const nofile = input.nofile && input.nofile > 0 ? { soft: input.nofile, hard: input.nofile } : DEFAULT_NOFILE;
  proc.rlimits = [{ type: "RLIMIT_NOFILE", ...nofile }];
  return proc;
}

export interface ConfigInput {
  /** The rootfs as the runtime reaches it (mounted and gated by the cell). */
  rootfs: string;
  hostname: string;
  cgroupsPath: string;
  process: OciProcess;
  /** Host uid/gid that container root maps to; undefined = no user namespace. */
  userns?: { hostId: number; size: number };
  /** Host binary bind-mounted read-only at HIDDEN_BUSYBOX (the long-lived init). */
  initBinary?: string;
  /** Network namespace file to join instead of a new, empty namespace. */
  netnsPath?: string;
  /** User namespace file to join (the one owning netnsPath) instead of a new one; needs userns. */
  usernsPath?: string;
}

export function buildConfig(input: ConfigInput): Record<string, unknown> {
  // cgroup: the container sees its own cgroup as "/" and nothing of the cell's hierarchy.
  const namespaces: Array<{ type: string; path?: string }> = ["pid", "network", "ipc", "uts", "mount", "cgroup"].map((type) =>
    type === "network" && input.netnsPath ? { type, path: input.netnsPath } : { type },
  );
  const linux: Record<string, unknown> = {
    namespaces,
    cgroupsPath: input.cgroupsPath,
    // Limits live on our parent cgroup; only the device rules are set on the runtime's own.
    resources: { devices: [{ allow: false, access: "rwm" }] },
    maskedPaths: MASKED_PATHS,
    readonlyPaths: READONLY_PATHS,
    seccomp: SECCOMP_PROFILE,
  };
  if (input.userns) {
    namespaces.push(input.usernsPath ? { type: "user", path: input.usernsPath } : { type: "user" });
    const map = [{ containerID: 0, hostID: input.userns.hostId, size: input.userns.size }];
    linux.uidMappings = map;
    linux.gidMappings = map;
  }
  return {
    ociVersion: "1.0.2",
    process: input.process,
    root: { path: input.rootfs, readonly: false },
    hostname: input.hostname,
    // Extra bind mounts are already in the rootfs (mounted by the cell, see mounts.ts).
    mounts: [...standardMounts(sysfsAllowed(input)), ...initMount(input.initBinary)],
    linux,
  };
}

/**
 * sysfs can be mounted only by a network namespace's owner: a user-namespaced container joining
 * one owned by the host's user namespace gets an empty read-only /sys.
 */
function sysfsAllowed(input: ConfigInput): boolean {
  return !(input.userns && input.netnsPath && !input.usernsPath);
}

function standardMounts(sysfs: boolean): Record<string, unknown>[] {
  const sys = sysfs
    ? { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] }
    : { destination: "/sys", type: "tmpfs", source: "tmpfs", options: ["nosuid", "noexec", "nodev", "ro", "size=4k"] };
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    sys,
  ];
}

function initMount(binary: string | undefined): Record<string, unknown>[] {
  if (!binary) return [];
  return [{ destination: HIDDEN_BUSYBOX, type: "bind", source: binary, options: ["bind", "ro", "nosuid", "nodev"] }];
}
