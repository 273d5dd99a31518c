export { diegoCommandOf } from "./diego-command.js";
