import { choiceSetting, defaultsOf, durationSetting, intSetting, stringSetting } from "../settings/index.js";

export const routerSettings = {
  routerListen: stringSetting({ flag: "router-listen", env: "DIEGO_ROUTER_LISTEN", default: "127.0.0.1:8080", help: "HOST:PORT the router proxies HTTP on (by Host header, to LRP instances)" }),
  routerRegister: choiceSetting({
    flag: "router-register",
    env: "DIEGO_ROUTER_REGISTER",
    default: "on",
    choices: ["on", "off"],
    help: "publish router.register / router.unregister on NATS for an existing gorouter (on, off)",
  }),
  routerRegisterInterval: durationSetting({
    flag: "router-register-interval",
    env: "DIEGO_ROUTER_REGISTER_INTERVAL",
    default: "40s",
    min: 1000,
    help: "how often every route is registered again, until a gorouter's greeting names its own interval",
  }),
  routerAccessLog: choiceSetting({ flag: "router-access-log", env: "DIEGO_ROUTER_ACCESS_LOG", default: "on", choices: ["on", "off"], help: "one log line per proxied request (on, off)" }),
} as const;

export const ROUTER_DEFAULTS = defaultsOf(routerSettings);

/** `diego router` only: `diego up` runs its router inside its own process. */
export const routerProcessSettings = {
  routerProcesses: intSetting({
    flag: "router-processes",
    env: "DIEGO_ROUTER_PROCESSES",
    default: 1,
    min: 1,
    max: 64,
    help: "router processes sharing --router-listen (node cluster, connections handed out in turn); about one per core",
  }),
} as const;
