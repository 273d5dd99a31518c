import { evacuationSettings, lrpCrashSettings } from "../../../src/store/index.js";
import { choiceSetting, durationSetting, intSetting, listSetting, stringSetting } from "../../../src/settings/index.js";

// What a cell offers and how it runs containers: `diego cell` and the cell inside `diego up`.

export const cellSettings = {
  cellId: stringSetting({ flag: "cell-id", env: "DIEGO_CELL_ID", default: "", help: "unique id of this cell (letters, digits, - and _); default cell-<hostname>" }),
  stacks: listSetting({ flag: "stacks", env: "DIEGO_STACKS", default: "lucid64", help: "stacks this cell serves (comma-separated)" }),
  rootfs: listSetting({
    flag: "rootfs",
    env: "DIEGO_ROOTFS",
    default: "",
    help: "preloaded root filesystem per stack, `stack=/dir` (comma-separated); default: the built-in busybox root filesystem",
  }),
  runtime: choiceSetting({
    flag: "runtime",
    env: "DIEGO_RUNTIME",
    default: "crun",
    choices: ["runc", "crun"],
    help: "OCI runtime: runc or crun. Left at the default, a cell where crun is missing or unusable uses runc and logs why (crun starts a container in about a third of runc's time: [docs/load.md](docs/load.md))",
  }),
  maxStarting: intSetting({
    flag: "max-starting",
    env: "DIEGO_MAX_STARTING",
    default: 0,
    min: 0,
    help: "most containers the cell creates or starts at once; the rest wait in order, and the cell claims at most twice this many not yet started (0 = 2 per core)",
  }),
  memoryMb: intSetting({ flag: "memory-mb", env: "DIEGO_MEMORY_MB", default: 0, help: "memory the cell offers (0 = the machine's total)" }),
  diskMb: intSetting({ flag: "disk-mb", env: "DIEGO_DISK_MB", default: 0, help: "disk the cell offers (0 = free space of the data dir)" }),
  containers: intSetting({ flag: "containers", env: "DIEGO_CONTAINERS", default: 256, min: 1, help: "container slots the cell offers" }),
  zone: stringSetting({ flag: "zone", env: "DIEGO_ZONE", default: "z1", help: "availability zone of the cell" }),
  dockerRegistry: stringSetting({ flag: "docker-registry", env: "DIEGO_DOCKER_REGISTRY", default: "registry-1.docker.io", help: "registry for docker:///org/image root filesystems" }),
  insecureRegistries: listSetting({
    flag: "insecure-registries",
    env: "DIEGO_INSECURE_REGISTRIES",
    default: "",
    help: "registries reached over plain http (host:port, comma-separated); loopback always is",
  }),
  // Shared with the converger: both must apply the same crash policy and evacuation timeout.
  ...evacuationSettings,
  ...lrpCrashSettings,
  pidsLimit: intSetting({ flag: "pids-limit", env: "DIEGO_PIDS_LIMIT", default: 1024, min: 1, help: "max processes per container" }),
  networkCidr: stringSetting({
    flag: "network-cidr",
    env: "DIEGO_NETWORK_CIDR",
    default: "",
    help: "IPv4 CIDR of the cell's container network (a /12 to /29); default a free /22 of 10.128.0.0/9 picked from the cell's work dir. A range that clashes with the machine's routes is refused",
  }),
  dnsServers: listSetting({
    flag: "dns-servers",
    env: "DIEGO_DNS_SERVERS",
    default: "",
    help: "resolvers named in each container's /etc/resolv.conf (comma-separated); default the machine's (loopback ones left out). Reaching them still needs an egress rule",
  }),
  hostPorts: stringSetting({ flag: "host-ports", env: "DIEGO_HOST_PORTS", default: "61000-61999", help: "host ports the cell hands to published container ports, FIRST-LAST" }),
  cellAddress: stringSetting({
    flag: "cell-address",
    env: "DIEGO_CELL_ADDRESS",
    default: "",
    help: "IPv4 address published container ports are reached at; default the address of the default route's interface",
  }),
} as const;
