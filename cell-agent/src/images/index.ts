export { createImageStore } from "./image-store.js";
export { ImagePullError, type ImagePullErrorKind } from "./errors.js";
export { parseDockerRootfs, formatImageRef, type DockerImageRef } from "./parse-docker-rootfs.js";
export type { ImageStore, ImageStoreOptions, PulledImage } from "./types.js";
