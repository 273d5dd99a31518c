import { noPositionals, onePositional, writeLine, type Context, type UserCommand } from "./context.js";
import { UsageError } from "./errors.js";
import { renderTable } from "./format.js";
import { readTaskFile } from "./task-file.js";

// `diego lrp ...`: the LRP routes (docs/api.md, "Long-Running Processes"), one request each.

const desiredPath = (guid: string): string => `/v1/desired_lrps/${encodeURIComponent(guid)}`;

/** The DesiredLRPResponse fields the tables show. */
interface DesiredView {
  process_guid: string;
  domain: string;
  instances: number;
  rootfs: string;
  ports?: number[];
  [field: string]: unknown;
}

interface ActualView {
  process_guid: string;
  index: number;
  state: string;
  cell_id?: string;
  address?: string;
  ports?: { container_port: number; host_port?: number }[] | null;
  crash_count?: number;
  crash_reason?: string;
  placement_error?: string;
}

export const lrpCreate: UserCommand = {
  synopsis: "diego lrp create -f FILE|-",
  help: "Desires an LRP from a DesiredLRPCreateRequest in JSON (docs/api.md), read from FILE or, with -f -, from stdin.",
  options: { file: { type: "string", short: "f" } },
  flagHelp: [["-f, --file FILE", "the LRP as JSON; - reads stdin"]],
  async run(ctx) {
    noPositionals(ctx, "lrp create");
    const file = await readTaskFile(ctx.values.file, ctx.stdin, "lrp create");
    await ctx.client.request("POST", "/v1/desired_lrps", file.body);
    const guid = processGuidOf(file.body);
    writeLine(ctx.stdout, ctx.json ? JSON.stringify({ process_guid: guid, created: true }) : `created LRP ${guid ?? ""}`.trimEnd());
    return 0;
  },
};

export const lrpGet: UserCommand = {
  synopsis: "diego lrp get GUID",
  help: "Shows one desired LRP, a field a line. --json prints the API's DesiredLRPResponse.",
  options: {},
  async run(ctx) {
    const guid = onePositional(ctx, "GUID", "lrp get");
    const body = await ctx.client.request("GET", desiredPath(guid));
    if (ctx.json) {
      writeLine(ctx.stdout, body);
      return 0;
    }
    const d = JSON.parse(body) as Record<string, unknown>;
    const fields = Object.entries(d).filter(([, v]) => v !== null && v !== "" && !(Array.isArray(v) && v.length === 0));
    const width = Math.max(...fields.map(([k]) => k.length));
    writeLine(ctx.stdout, fields.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${typeof v === "string" ? v : JSON.stringify(v)}`).join("\n"));
    return 0;
  },
};

export const lrpList: UserCommand = {
  synopsis: "diego lrp list [--domain D]",
  help: "Lists desired LRPs as a table: guid, domain, instances, rootfs and ports. --json prints the API's array.",
  options: { domain: { type: "string" } },
  flagHelp: [["--domain D", "only the LRPs of domain D"]],
  async run(ctx) {
    noPositionals(ctx, "lrp list");
    const domain = ctx.values.domain as string | undefined;
    const body = await ctx.client.request("GET", domain ? `/v1/desired_lrps?domain=${encodeURIComponent(domain)}` : "/v1/desired_lrps");
    if (ctx.json) {
      writeLine(ctx.stdout, body);
      return 0;
    }
    const lrps = (JSON.parse(body) as DesiredView[]).sort((a, b) => a.process_guid.localeCompare(b.process_guid));
    const rows = lrps.map((d) => [d.process_guid, d.domain, String(d.instances), d.rootfs, (d.ports ?? []).join(",") || "-"]);
    writeLine(ctx.stdout, rows.length === 0 ? "No LRPs." : renderTable(["GUID", "DOMAIN", "INSTANCES", "ROOTFS", "PORTS"], rows));
    return 0;
  },
};

export const lrpScale: UserCommand = {
  synopsis: "diego lrp scale GUID N",
  help: "Sets the number of instances: new indices are started, those at N and above are stopped.",
  options: {},
  async run(ctx) {
    const [guid, count, ...rest] = ctx.positionals;
    if (!guid || count === undefined || rest.length > 0) throw new UsageError("'diego lrp scale' needs GUID and N (see 'diego lrp scale --help')");
    if (!/^[0-9]+$/.test(count)) throw new UsageError(`N must be a whole number of instances, got '${count}'`);
    await ctx.client.request("PUT", desiredPath(guid), JSON.stringify({ instances: Number(count) }));
    writeLine(ctx.stdout, ctx.json ? JSON.stringify({ process_guid: guid, instances: Number(count) }) : `scaled LRP ${guid} to ${count}`);
    return 0;
  },
};

export const lrpDelete: UserCommand = {
  synopsis: "diego lrp delete GUID",
  help: "Deletes a desired LRP; every instance of it is stopped.",
  options: {},
  async run(ctx) {
    const guid = onePositional(ctx, "GUID", "lrp delete");
    await ctx.client.request("DELETE", desiredPath(guid));
    writeLine(ctx.stdout, ctx.json ? JSON.stringify({ process_guid: guid, deleted: true }) : `deleted LRP ${guid}`);
    return 0;
  },
};

export const lrpActuals: UserCommand = {
  synopsis: "diego lrp actuals GUID",
  help: "Lists the instances of an LRP as a table: index, state, cell, address:host_port per container port, crashes and why. --json prints the API's array.",
  options: {},
  async run(ctx) {
    const guid = onePositional(ctx, "GUID", "lrp actuals");
    const body = await ctx.client.request("GET", `/v1/actual_lrps/${encodeURIComponent(guid)}`);
    if (ctx.json) {
      writeLine(ctx.stdout, body);
      return 0;
    }
    writeLine(ctx.stdout, actualsTable(JSON.parse(body) as ActualView[], guid));
    return 0;
  },
};

export const lrpKill: UserCommand = {
  synopsis: "diego lrp kill GUID INDEX",
  help: "Stops one instance; a new one is started in its place.",
  options: {},
  async run(ctx: Context) {
    const [guid, index, ...rest] = ctx.positionals;
    if (!guid || index === undefined || rest.length > 0) throw new UsageError("'diego lrp kill' needs GUID and INDEX (see 'diego lrp kill --help')");
    await ctx.client.request("DELETE", `/v1/actual_lrps/${encodeURIComponent(guid)}/index/${encodeURIComponent(index)}`);
    writeLine(ctx.stdout, ctx.json ? JSON.stringify({ process_guid: guid, index: Number(index), killed: true }) : `killed instance ${index} of LRP ${guid}`);
    return 0;
  },
};

export const LRP_COMMANDS: Record<string, UserCommand> = {
  create: lrpCreate,
  get: lrpGet,
  list: lrpList,
  scale: lrpScale,
  delete: lrpDelete,
  actuals: lrpActuals,
  kill: lrpKill,
};

function actualsTable(actuals: ActualView[], guid: string): string {
  if (actuals.length === 0) return `No instances of LRP ${guid}.`;
  const rows = [...actuals]
    .sort((a, b) => a.index - b.index)
    .map((a) => {
      const addresses = (a.ports ?? []).map((p) => `${p.container_port}->${a.address}:${p.host_port ?? 0}`).join(",");
      const why = a.crash_reason || a.placement_error || "";
      return [String(a.index), a.state, a.cell_id || "-", addresses || "-", String(a.crash_count ?? 0), why || "-"];
    });
  return renderTable(["INDEX", "STATE", "CELL", "PORTS", "CRASHES", "REASON"], rows);
}

function processGuidOf(body: string): string | undefined {
  try {
    const doc = JSON.parse(body) as { process_guid?: unknown };
    return typeof doc.process_guid === "string" ? doc.process_guid : undefined;
  } catch {
    return undefined;
  }
}
