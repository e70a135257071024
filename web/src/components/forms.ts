import type { FieldValues, Path, UseFormSetError } from "react-hook-form";
import type { ServerError } from "@/lib/errors";

/**
 * Puts each server error that names a field of the form (extensions.field)
 * next to that field; returns the others, for the form's alert.
 */
export function applyServerErrors<T extends FieldValues>(
  errors: readonly ServerError[],
  fields: readonly Path<T>[],
  setError: UseFormSetError<T>,
): ServerError[] {
  const rest: ServerError[] = [];
  for (const error of errors) {
    const field = fields.find((name) => name === error.field);
    if (field) setError(field, { type: "server", message: error.message });
    else rest.push(error);
  }
  return rest;
}
