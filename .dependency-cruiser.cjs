// Module boundaries (npm run lint:deps, part of npm test). A module is a folder directly under
// src/ or cell-agent/src/; its index.ts is its public surface and the only file other modules may
// import. Generated code (src/gen) is imported file by file. Tests may import deeply.
const MODULE = "^(src|cell-agent/src)/([^/]+)/";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-deep-import",
      severity: "error",
      comment: "Import another module through its index.ts, which is its public surface.",
      from: { path: MODULE },
      to: {
        path: "^(src|cell-agent/src)/[^/]+/",
        pathNot: ["^$1/$2/", "^(src|cell-agent/src)/[^/]+/index\\.ts$", "^src/gen/"],
      },
    },
    {
      name: "no-deep-import-from-roots",
      severity: "error",
      comment: "Files outside a module (cell-agent/src/index.ts, bin/) import modules through their index.ts.",
      from: { path: "^(cell-agent/src/[^/]+\\.ts|bin/)" },
      to: { path: MODULE, pathNot: ["^(src|cell-agent/src)/[^/]+/index\\.ts$", "^src/gen/"] },
    },
    {
      name: "no-module-cycle",
      severity: "error",
      comment: "Modules depend on each other in one direction only.",
      scope: "folder",
      from: { path: "^(src|cell-agent/src)/([^/]+)" },
      // Sub-folders of one module (src/api/rest, src/api/grpc) may use each other.
      to: { path: "^(src|cell-agent/src)/[^/]+", pathNot: "^$1/$2(/|$)", circular: true },
    },
    {
      name: "no-file-cycle",
      severity: "error",
      comment: "A cycle between files loads one of them half-initialised.",
      from: { path: "^(src|cell-agent/src|bin)/" },
      to: { circular: true },
    },
    {
      name: "not-to-tests",
      severity: "error",
      comment: "Code does not import tests, benches or scripts.",
      from: { path: "^(src|cell-agent/src|bin)/" },
      to: { path: "^(test|bench|scripts)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(dist|node_modules)/" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: [".ts", ".js", ".mjs", ".cjs", ".json"] },
  },
};
