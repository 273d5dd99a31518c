import type { ImageStore } from "../images/index.js";

// Turns a task's root_fs into overlay layers and the image's environment.

export interface ResolvedRootfs {
  layers: string[];
  env: string[];
  workdir: string;
  /** The image's default user ("" = root). */
  user: string;
}

export class RootfsError extends Error {
  override readonly name = "RootfsError";
}

export interface RootfsResolver {
  resolve(rootFs: string, stack: string, signal?: AbortSignal): Promise<ResolvedRootfs>;
}

export function createRootfsResolver(preloaded: Map<string, string>, images: ImageStore): RootfsResolver {
  return {
    async resolve(rootFs, stack, signal) {
      if (rootFs === "" || rootFs.startsWith("preloaded:")) {
        const name = rootFs === "" ? stack : rootFs.slice("preloaded:".length);
        const dir = preloaded.get(name);
        if (!dir) throw new RootfsError(`no preloaded root filesystem for stack '${name}' on this cell`);
        return { layers: [dir], env: [], workdir: "/", user: "" };
      }
      if (rootFs.startsWith("docker://")) {
        const image = await images.pull(rootFs, signal);
        return { layers: image.layers, env: image.env, workdir: image.workingDir || "/", user: image.user };
      }
      throw new RootfsError(`unsupported root filesystem '${rootFs}'`);
    },
  };
}
