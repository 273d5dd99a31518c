export { startReceptor, type Receptor, type ReceptorOptions } from "./start-receptor.js";
export { receptorSettings } from "./settings.js";
