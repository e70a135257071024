import type { CombinedError } from "@urql/core";

/** One error from the gateway, as the contract shapes it. */
export interface ServerError {
  message: string;
  code?: string;
  /** The input the error is about (extensions.field), shown next to that field. */
  field?: string;
  /** Seconds until a RATE_LIMITED request may be tried again. */
  retryAfter?: number;
  /** SECOND_FACTOR_REQUIRED: the one-try challenge to answer with a code. */
  challenge?: string;
}

interface RawError {
  message?: unknown;
  extensions?: Record<string, unknown> | null;
}

export function fromRaw(errors: readonly RawError[] | undefined | null): ServerError[] {
  return (errors ?? []).map((error) => {
    const extensions = error.extensions ?? {};
    const retryAfter = extensions.retryAfter;
    const challenge = extensions.challenge;
    return {
      message: typeof error.message === "string" ? error.message : "unexpected error",
      code: typeof extensions.code === "string" ? extensions.code : undefined,
      field: typeof extensions.field === "string" ? extensions.field : undefined,
      retryAfter: typeof retryAfter === "number" ? retryAfter : undefined,
      ...(typeof challenge === "string" ? { challenge } : {}),
    };
  });
}

export function fromCombined(error: CombinedError | undefined | null): ServerError[] {
  if (!error) return [];
  if (error.graphQLErrors.length > 0) {
    return fromRaw(
      error.graphQLErrors.map((e) => ({ message: e.message, extensions: e.extensions })),
    );
  }
  if (error.networkError) {
    return [{ message: "The server cannot be reached. Check your connection and try again.", code: "NETWORK" }];
  }
  return [{ message: error.message }];
}

export function hasCode(errors: readonly ServerError[], code: string): boolean {
  return errors.some((error) => error.code === code);
}

/** The text shown for an error: the server's message as it is, and when to retry. */
export function errorText(error: ServerError, now: Date = new Date()): string {
  if (error.code === "RATE_LIMITED" && error.retryAfter !== undefined) {
    const at = new Date(now.getTime() + error.retryAfter * 1000);
    return `${error.message} (you can try again at ${at.toLocaleTimeString()})`;
  }
  return error.message;
}
