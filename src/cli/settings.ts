import { auctioneerSettings } from "../auction/index.js";
import { cellSettings } from "../../cell-agent/src/index.js";
import { convergerSettings } from "../converger/index.js";
import { dispatcherSettings } from "../dispatcher/index.js";
import { metricsSettings } from "../metrics/index.js";
import { embeddedNatsSettings, natsConnectionSettings, replicaSettings } from "../nats/index.js";
import { receptorSettings } from "../receptor/index.js";
import { routerProcessSettings, routerSettings } from "../router/index.js";
import { choiceSetting, stringSetting, type SettingSpec, type SettingsOf, type SettingTable } from "../settings/index.js";
import { cellTtlSettings } from "../store/index.js";

// Which settings each command reads. Each component declares its own settings (flag, environment
// variable, typed default, help) beside its code; a command's table is the union of those of the
// components it runs. `diego <command> --help`, the parser and the README's configuration table
// (npm run docs:settings) all read these tables.

export const logSettings = {
  logLevel: choiceSetting({
    flag: "log-level",
    env: "DIEGO_LOG_LEVEL",
    default: "info",
    choices: ["trace", "debug", "info", "warn", "error", "fatal", "silent"],
    help: "pino log level (trace, debug, info, warn, error, fatal, silent)",
  }),
  logFormat: choiceSetting({
    flag: "log-format",
    env: "DIEGO_LOG_FORMAT",
    default: "auto",
    choices: ["auto", "json", "text"],
    help: "logs on stderr as JSON lines (json), one readable line each (text), or text on a terminal and JSON otherwise (auto)",
  }),
} as const;

export const dataDirSettings = {
  dataDir: stringSetting({ flag: "data-dir", env: "DIEGO_DATA_DIR", default: ".diego", help: "where the embedded nats-server keeps JetStream data and cells keep containers" }),
} as const;

/** How `diego up` lays out its components. */
export const upLayoutSettings = {
  cellProcess: choiceSetting({
    flag: "cell-process",
    env: "DIEGO_CELL_PROCESS",
    default: "own",
    choices: ["own", "shared"],
    help: "run up's cell in a Node process of its own (own), which keeps the API responsive while the cell starts containers, or in up's process with the API (shared); see [docs/load.md](docs/load.md)",
  }),
} as const;

/** What every server process reads: NATS, logging, and when a cell counts as gone. */
const processSettings = { ...natsConnectionSettings, ...logSettings, ...cellTtlSettings } as const;
/** A process of its own on a NATS cluster: bucket replicas. */
const fleetSettings = { ...processSettings, ...replicaSettings } as const;

const cellCommandSettings = { ...dataDirSettings, ...cellSettings } as const;

export const COMMAND_SETTINGS = {
  up: {
    ...receptorSettings,
    ...dataDirSettings,
    ...processSettings,
    ...embeddedNatsSettings,
    ...cellSettings,
    ...auctioneerSettings,
    ...convergerSettings,
    ...dispatcherSettings,
    ...routerSettings,
    ...upLayoutSettings,
  },
  receptor: { ...receptorSettings, ...fleetSettings },
  auctioneer: { ...fleetSettings, ...auctioneerSettings, ...metricsSettings },
  converger: { ...fleetSettings, ...convergerSettings, ...metricsSettings },
  dispatcher: { ...fleetSettings, ...dispatcherSettings, ...metricsSettings },
  cell: { ...fleetSettings, ...cellCommandSettings, ...metricsSettings },
  // Stateless: it reads the LRP buckets others create, so it has no replica setting.
  router: { ...natsConnectionSettings, ...logSettings, ...routerSettings, ...routerProcessSettings },
} as const satisfies Record<string, SettingTable>;

export type ServerCommand = keyof typeof COMMAND_SETTINGS;
/** The typed settings of one command. */
export type CommandSettings<C extends ServerCommand> = SettingsOf<(typeof COMMAND_SETTINGS)[C]>;

export const SERVER_COMMANDS = Object.keys(COMMAND_SETTINGS) as ServerCommand[];

export const isServerCommand = (c: string): c is ServerCommand => Object.hasOwn(COMMAND_SETTINGS, c);

/** One row of the configuration table: a setting and the commands that read it. */
export interface SettingRow {
  key: string;
  spec: SettingSpec;
  for: string[];
}

/** Every setting once, in the order the commands first name them, with who reads it. */
export function settingRows(): SettingRow[] {
  const rows = new Map<string, SettingRow>();
  for (const command of SERVER_COMMANDS) {
    for (const [key, spec] of Object.entries(COMMAND_SETTINGS[command] as SettingTable)) {
      const row = rows.get(key) ?? { key, spec, for: [] };
      if (row.spec !== spec) throw new Error(`setting '${key}' is declared twice with different specs`);
      row.for.push(command);
      rows.set(key, row);
    }
  }
  return [...rows.values()];
}

export class InvalidSettingError extends Error {
  override readonly name = "InvalidSettingError";
}
