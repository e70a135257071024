import { initialValue, schemaFor, toVariables, type VariableSpec } from "./prompt-form";

const specs: VariableSpec[] = [
  { name: "text", type: "string", required: true, description: "", maxLength: 10 },
  { name: "sentences", type: "integer", required: false, description: "", default: 3 },
  { name: "labels", type: "array", required: true, description: "", maxLength: 2 },
  { name: "strict", type: "boolean", required: false, description: "", default: true },
];

describe("the form generated from a prompt's variables", () => {
  it("starts from the declared defaults", () => {
    expect(specs.map(initialValue)).toEqual(["", "3", "", true]);
  });

  it("checks types, required fields and limits as the server does", () => {
    const schema = schemaFor(specs);
    const bad = schema.safeParse({ text: "far too long a text", sentences: "2.5", labels: "a\nb\nc", strict: false });
    expect(bad.success).toBe(false);
    const messages = Object.fromEntries((bad.error?.issues ?? []).map((issue) => [issue.path[0], issue.message]));
    expect(messages).toEqual({
      text: "At most 10 characters",
      sentences: "Enter a whole number",
      labels: "At most 2 lines",
    });
    expect(schema.safeParse({ text: "", sentences: "", labels: "", strict: false }).error?.issues.map((i) => i.path[0])).toEqual([
      "text",
      "labels",
    ]);
  });

  it("sends typed JSON, one array item per line, optional empties left out", () => {
    expect(toVariables(specs, { text: "hello", sentences: "", labels: " spam \n\nham", strict: false })).toEqual({
      text: "hello",
      labels: ["spam", "ham"],
      strict: false,
    });
    expect(toVariables(specs, { text: "x", sentences: "4", labels: "a", strict: true })).toMatchObject({ sentences: 4 });
  });
});
