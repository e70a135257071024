"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import dynamic from "next/dynamic";
import { useId, useMemo, useState, type ReactNode } from "react";
import { useForm } from "react-hook-form";
import { useQuery } from "urql";
import { z } from "zod";
import { Cell, Table } from "@/components/Table";
import { Button, Card, ErrorAlert, Loading, PageHeading, TextAreaField } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined } from "@/lib/errors";
import { useTeamId } from "@/lib/team";

// The chart library loads with this page only, after its first paint.
const LineOverTime = dynamic(() => import("@/components/Charts").then((m) => m.LineOverTime), { ssr: false });
const BarsOverTime = dynamic(() => import("@/components/Charts").then((m) => m.BarsOverTime), { ssr: false });

const AnalyticsQuery = graphql(`
  query Analytics($teamId: ID, $from: DateTime!, $to: DateTime!) {
    eventCounts(teamId: $teamId) {
      name
      count
    }
    activeUsers(period: DAY, from: $from, to: $to, teamId: $teamId) {
      start
      users
    }
    usage(period: DAY, from: $from, to: $to, teamId: $teamId) {
      start
      prompts
      promptTokens
      completionTokens
      costUsd
    }
  }
`);

const FunnelQuery = graphql(`
  query Funnel($steps: [String!]!, $teamId: ID) {
    funnel(steps: $steps, teamId: $teamId) {
      name
      users
      conversion
    }
  }
`);

const DAY_MS = 24 * 3600 * 1000;

function day(iso: string): string {
  return new Date(iso).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
}

export default function AnalyticsPage() {
  const teamId = useTeamId();
  // The last 30 days up to the end of today (UTC), fixed for the page's life.
  const [range] = useState(() => {
    const end = new Date(Math.ceil(Date.now() / DAY_MS) * DAY_MS);
    return { from: new Date(end.getTime() - 30 * DAY_MS).toISOString(), to: end.toISOString() };
  });
  const [{ data, error, fetching }] = useQuery({ query: AnalyticsQuery, variables: { teamId, ...range } });
  const active = useMemo(() => (data?.activeUsers ?? []).map((p) => ({ label: day(p.start), value: p.users })), [data]);
  const tokens = useMemo(
    () => (data?.usage ?? []).map((p) => ({ label: day(p.start), value: p.promptTokens + p.completionTokens })),
    [data],
  );
  return (
    <>
      <PageHeading>Analytics</PageHeading>
      <ErrorAlert errors={fromCombined(error)} />
      {!data && fetching ? <Loading /> : null}
      {data ? (
        <div className="grid gap-4 lg:grid-cols-2">
          <Card title="Event counts">
            <Table name="Event counts" columns={["Event", "Count"]}>
              {data.eventCounts.map((count) => (
                <tr key={count.name}>
                  <Cell header>
                    <code>{count.name}</code>
                  </Cell>
                  <Cell>{count.count.toLocaleString()}</Cell>
                </tr>
              ))}
            </Table>
          </Card>
          <ChartFigure
            name="Active users"
            summary={`Per day, last 30 days: ${active.reduce((max, p) => Math.max(max, p.value), 0)} at most, ${active.at(-1)?.value ?? 0} today.`}
          >
            <LineOverTime points={active} unit="users" />
          </ChartFigure>
          <ChartFigure
            name="LLM usage"
            summary={`Tokens per day, last 30 days: ${tokens.reduce((sum, p) => sum + p.value, 0).toLocaleString()} in all, $${data.usage
              .reduce((sum, p) => sum + p.costUsd, 0)
              .toFixed(4)}.`}
          >
            <BarsOverTime points={tokens} unit="tokens" />
          </ChartFigure>
          <FunnelCard teamId={teamId} />
        </div>
      ) : null}
    </>
  );
}

/** A chart named by its caption, with its numbers said in words (the chart is hidden from screen readers). */
function ChartFigure({ name, summary, children }: { name: string; summary: string; children: ReactNode }) {
  const id = useId();
  return (
    <Card>
      <figure aria-labelledby={id}>
        <figcaption id={id} className="mb-2 text-lg font-semibold">
          {name}
        </figcaption>
        <p className="mb-2 text-sm text-slate-700">{summary}</p>
        {children}
      </figure>
    </Card>
  );
}

const funnelSchema = z.object({
  steps: z
    .string()
    .refine((text) => text.split("\n").filter((line) => line.trim()).length >= 2, "Enter at least two events, one per line"),
});

function FunnelCard({ teamId }: { teamId: string | null }) {
  const [steps, setSteps] = useState<string[] | null>(null);
  const [{ data, error, fetching }] = useQuery({
    query: FunnelQuery,
    variables: { steps: steps ?? [], teamId },
    pause: !steps,
    requestPolicy: "network-only",
  });
  const { register, handleSubmit, formState } = useForm<z.infer<typeof funnelSchema>>({
    resolver: zodResolver(funnelSchema),
    defaultValues: { steps: "user.registered\nuser.logged_in" },
  });
  return (
    <Card title="Funnel">
      <form
        noValidate
        className="flex flex-col gap-3"
        onSubmit={handleSubmit((values) =>
          setSteps(
            values.steps
              .split("\n")
              .map((line) => line.trim())
              .filter(Boolean),
          ),
        )}
      >
        <TextAreaField label="Steps" hint="Event names in order, one per line." rows={3} error={formState.errors.steps?.message} {...register("steps")} />
        <Button type="submit">Show funnel</Button>
      </form>
      <ErrorAlert errors={fromCombined(error)} />
      {fetching ? <Loading /> : null}
      {data ? (
        <div className="mt-3">
          <Table name="Funnel" columns={["Step", "Users", "Conversion"]}>
            {data.funnel.map((step, index) => (
              <tr key={`${index}-${step.name}`}>
                <Cell header>
                  <code>{step.name}</code>
                </Cell>
                <Cell>{step.users}</Cell>
                <Cell>{(step.conversion * 100).toFixed(0)}%</Cell>
              </tr>
            ))}
          </Table>
        </div>
      ) : null}
    </Card>
  );
}
