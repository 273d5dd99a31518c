// The few libc calls the cell makes in-process (koffi FFI): namespaces and mounts for the network,
// netlink sockets, and flock for the work-dir claim.
export * from "./libc.js";
