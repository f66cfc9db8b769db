import { isVellumError } from "../../src/core/errors.js";

/**
 * Runs `f` and returns the code of the VellumError it throws, or "no error" if it returns.
 * Any other error is rethrown, so an unexpected failure is never mistaken for a code.
 */
export function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isVellumError(e)) return e.code;
    throw e;
  }
  return "no error";
}

/** The code of the VellumError `p` rejects with, or "no error"; any other error is rethrown. */
export async function codeOfAsync(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isVellumError(e)) return e.code;
    throw e;
  }
  return "no error";
}
