/** A port free on 127.0.0.1 right now: the one helper, shared with the scripts. */
export { freePort } from "../../scripts/lib/ports.js";
