import { z } from "zod";

/** A declared prompt variable, as PromptTemplate.variableSpecs gives it. */
export interface VariableSpec {
  name: string;
  type: string;
  required: boolean;
  description: string;
  maxLength?: number | null;
  default?: unknown;
}

/** What a form field holds: text for every type but boolean. */
export type FieldValue = string | boolean;

export function initialValue(spec: VariableSpec): FieldValue {
  if (spec.type === "boolean") return spec.default === true;
  if (spec.default === null || spec.default === undefined) return "";
  if (spec.type === "array" && Array.isArray(spec.default)) return spec.default.join("\n");
  if (spec.type === "object") return JSON.stringify(spec.default, null, 2);
  return String(spec.default);
}

function lines(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
}

/** Zod checks mirroring the server's (it checks again and has the last word). */
export function schemaFor(specs: readonly VariableSpec[]) {
  const shape: Record<string, z.ZodType<FieldValue>> = {};
  for (const spec of specs) {
    if (spec.type === "boolean") {
      shape[spec.name] = z.boolean();
      continue;
    }
    shape[spec.name] = z.string().superRefine((text, context) => {
      const empty = text.trim() === "";
      if (empty) {
        if (spec.required) context.addIssue({ code: "custom", message: "Required" });
        return;
      }
      if (spec.type === "integer" && !/^-?\d+$/.test(text.trim())) {
        context.addIssue({ code: "custom", message: "Enter a whole number" });
      } else if (spec.type === "number" && Number.isNaN(Number(text))) {
        context.addIssue({ code: "custom", message: "Enter a number" });
      } else if (spec.type === "object") {
        try {
          const parsed: unknown = JSON.parse(text);
          if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error();
        } catch {
          context.addIssue({ code: "custom", message: "Enter a JSON object" });
        }
      }
      const limit = spec.maxLength;
      if (limit) {
        const size = spec.type === "array" ? lines(text).length : text.length;
        if (size > limit) {
          context.addIssue({
            code: "custom",
            message: spec.type === "array" ? `At most ${limit} lines` : `At most ${limit} characters`,
          });
        }
      }
    });
  }
  return z.object(shape) as unknown as z.ZodType<Record<string, FieldValue>, Record<string, FieldValue>>;
}

/** The form's values as the prompt's JSON variables; empty optional ones are left out. */
export function toVariables(specs: readonly VariableSpec[], values: Record<string, FieldValue>): Record<string, unknown> {
  const variables: Record<string, unknown> = {};
  for (const spec of specs) {
    const value = values[spec.name];
    if (typeof value === "boolean") {
      variables[spec.name] = value;
      continue;
    }
    if (value === undefined || value.trim() === "") continue;
    switch (spec.type) {
      case "integer":
      case "number":
        variables[spec.name] = Number(value);
        break;
      case "array":
        variables[spec.name] = lines(value);
        break;
      case "object":
        variables[spec.name] = JSON.parse(value) as unknown;
        break;
      default:
        variables[spec.name] = value;
    }
  }
  return variables;
}
