"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import { useCallback, useEffect, useMemo, useState } from "react";
import { useForm } from "react-hook-form";
import { useClient, useQuery } from "urql";
import { Button, Card, ErrorAlert, Loading, PageHeading, SelectField, TextAreaField, TextField } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined, type ServerError } from "@/lib/errors";
import { initialValue, schemaFor, toVariables, type FieldValue, type VariableSpec } from "@/lib/prompt-form";
import { useTeamId } from "@/lib/team";

const PromptsQuery = graphql(`
  query Prompts($teamId: ID) {
    prompts {
      path
      version
      model
      description
      variableSpecs {
        name
        type
        required
        description
        maxLength
        default
      }
    }
    llmUsage(teamId: $teamId) {
      tokensUsed
      tokensPerPeriod
      periodEnd
    }
  }
`);

const PromptStream = graphql(`
  subscription PromptStream($path: String!, $variables: JSON, $teamId: ID) {
    promptStream(path: $path, variables: $variables, teamId: $teamId) {
      requestId
      delta
      done
      model
      promptTokens
      completionTokens
      costUsd
      cached
    }
  }
`);

interface Usage {
  model: string | null | undefined;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  cached: boolean;
}

export default function PlaygroundPage() {
  const teamId = useTeamId();
  const [{ data, error, fetching }, reexecute] = useQuery({ query: PromptsQuery, variables: { teamId } });
  const [path, setPath] = useState<string>("");
  const prompts = useMemo(() => data?.prompts ?? [], [data]);
  const refreshUsage = useCallback(() => reexecute({ requestPolicy: "network-only" }), [reexecute]);
  const prompt = prompts.find((p) => p.path === path) ?? prompts[0];
  return (
    <>
      <PageHeading>Playground</PageHeading>
      <ErrorAlert errors={fromCombined(error)} />
      {!data && fetching ? <Loading /> : null}
      {data ? (
        <>
          <SelectField label="Prompt" value={prompt?.path ?? ""} onChange={(event) => setPath(event.target.value)}>
            {prompts.map((p) => (
              <option key={p.path} value={p.path}>
                {p.path}
              </option>
            ))}
          </SelectField>
          {prompt ? (
            <>
              <p className="text-sm text-slate-700">
                {prompt.description} · {prompt.model} · v{prompt.version}
              </p>
              <PromptForm
                key={prompt.path}
                path={prompt.path}
                specs={prompt.variableSpecs}
                teamId={teamId}
                onDone={refreshUsage}
              />
            </>
          ) : null}
          <p className="text-sm text-slate-700">
            Quota: {data.llmUsage.tokensUsed.toLocaleString()} of {data.llmUsage.tokensPerPeriod.toLocaleString()} tokens
            used, {Math.max(0, data.llmUsage.tokensPerPeriod - data.llmUsage.tokensUsed).toLocaleString()} left until{" "}
            {new Date(data.llmUsage.periodEnd).toLocaleDateString()}.
          </p>
        </>
      ) : null}
    </>
  );
}

function PromptForm({
  path,
  specs,
  teamId,
  onDone,
}: {
  path: string;
  specs: VariableSpec[];
  teamId: string | null;
  onDone: () => void;
}) {
  const client = useClient();
  const schema = useMemo(() => schemaFor(specs), [specs]);
  const defaults = useMemo(() => Object.fromEntries(specs.map((s) => [s.name, initialValue(s)])), [specs]);
  const { register, handleSubmit, setError, formState } = useForm<Record<string, FieldValue>>({
    resolver: zodResolver(schema),
    defaultValues: defaults,
  });
  const [answer, setAnswer] = useState("");
  const [usage, setUsage] = useState<Usage | null>(null);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const [running, setRunning] = useState(false);
  // One run at a time: a new run (or leaving the page) ends the previous stream.
  const [run, setRun] = useState<{
    path: string;
    variables: Record<string, unknown>;
    teamId: string | null;
    names: string[];
  } | null>(null);

  useEffect(() => {
    if (!run) return;
    const { unsubscribe } = client
      .subscription(PromptStream, { path: run.path, variables: run.variables, teamId: run.teamId })
      .subscribe((result) => {
        if (result.error) {
          // BAD_USER_INPUT names each bad variable: show it next to its field.
          for (const error of result.error.graphQLErrors) {
            const problems = error.extensions?.variables;
            if (!Array.isArray(problems)) continue;
            for (const problem of problems as { name: string; problem: string }[]) {
              if (run.names.includes(problem.name)) {
                setError(problem.name, { type: "server", message: `${problem.name} ${problem.problem}` });
              }
            }
          }
          setErrors(fromCombined(result.error));
          setRunning(false);
          return;
        }
        const item = result.data?.promptStream;
        if (!item) return;
        if (item.delta) setAnswer((text) => text + item.delta);
        if (item.done) {
          setUsage({
            model: item.model,
            promptTokens: item.promptTokens ?? 0,
            completionTokens: item.completionTokens ?? 0,
            costUsd: item.costUsd ?? 0,
            cached: item.cached ?? false,
          });
          setRunning(false);
          onDone();
        }
      });
    return unsubscribe;
  }, [run, client, setError, onDone]);

  const onSubmit = handleSubmit((values) => {
    setAnswer("");
    setUsage(null);
    setErrors([]);
    setRunning(true);
    setRun({ path, variables: toVariables(specs, values), teamId, names: specs.map((s) => s.name) });
  });

  return (
    <div className="grid gap-4 lg:grid-cols-2">
      <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
        {specs.map((spec) => {
          const hint = [
            spec.type,
            spec.required ? "required" : "optional",
            spec.type === "array" ? "one value per line" : "",
            spec.maxLength ? `at most ${spec.maxLength}` : "",
            spec.description,
          ]
            .filter(Boolean)
            .join(" · ");
          const error = formState.errors[spec.name]?.message;
          if (spec.type === "boolean") {
            return (
              <div key={spec.name} className="flex items-center gap-2">
                <input id={`var-${spec.name}`} type="checkbox" {...register(spec.name)} />
                <label htmlFor={`var-${spec.name}`}>{spec.name}</label>
              </div>
            );
          }
          if (spec.type === "array" || spec.type === "object" || (spec.type === "string" && (spec.maxLength ?? 1000) > 200)) {
            return (
              <TextAreaField key={spec.name} label={spec.name} hint={hint} error={error} rows={4} {...register(spec.name)} />
            );
          }
          return (
            <TextField
              key={spec.name}
              label={spec.name}
              hint={hint}
              error={error}
              inputMode={spec.type === "integer" || spec.type === "number" ? "decimal" : undefined}
              {...register(spec.name)}
            />
          );
        })}
        <ErrorAlert errors={errors} />
        <Button type="submit" disabled={running}>
          Run
        </Button>
      </form>
      <Card title="Answer">
        <div role="region" aria-label="Answer" aria-live="polite" aria-busy={running} className="min-h-24 whitespace-pre-wrap text-sm">
          {answer}
        </div>
        {usage ? (
          <p className="mt-3 text-sm text-slate-700">
            {usage.promptTokens + usage.completionTokens} tokens ({usage.promptTokens} prompt, {usage.completionTokens}{" "}
            completion) · ${usage.costUsd.toFixed(6)}
            {usage.cached ? " · from cache" : ""}
            {usage.model ? ` · ${usage.model}` : ""}
          </p>
        ) : running ? (
          <p className="mt-3 text-sm text-slate-600">Generating…</p>
        ) : null}
      </Card>
    </div>
  );
}
